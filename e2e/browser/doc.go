// Package browser holds the dashboard's real-browser test: headless Chromium
// (Debian's /usr/bin/chromium, driven by chromedp) against the whole stack
// started by devstack/stacktest. Screenshots go to e2e/artifacts/.
package browser
