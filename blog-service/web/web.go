// Package web is the blog's sample single-page app: plain HTML, CSS and JS
// modules embedded in the binary and served at /blog/. It talks to the API
// at /api/... on the same origin, i.e. through the load balancer and
// gateway in a full deployment.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"titanium/platform/apierr"
)

//go:embed index.html style.css *.js
var files embed.FS

// Prefix is the path the app is served under.
const Prefix = "/blog/"

// contentSecurityPolicy allows only this origin's scripts, styles and API:
// even if user content were ever inserted as HTML by mistake, no injected
// script could run.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the app for GET requests under Prefix. Unknown files get
// a JSON 404 like every other error of the service.
func Handler() http.Handler {
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(r.URL.Path, Prefix)), "/")
		if name == "" {
			name = "index.html"
		}
		if _, err := fs.Stat(files, name); err != nil {
			apierr.WriteCode(w, apierr.CodeNotFound, "no such file")
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change with the binary; revalidate rather than serve stale JS.
		h.Set("Cache-Control", "no-cache")
		http.StripPrefix(strings.TrimSuffix(Prefix, "/"), fileServer).ServeHTTP(w, r)
	})
}
