// Package web serves the dashboard's static files from the binary itself:
// the page, its JavaScript modules, its stylesheet and the vendored copy of
// Chart.js. Every file is read once at start, given a strong ETag and, when
// it pays, a gzip copy, so that serving is a map lookup.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"titanium/platform/apierr"
)

// static holds the dashboard. vendor/ always has README.txt, so the pattern
// matches before scripts/vendor.sh has copied Chart.js in.
//
//go:embed static
var static embed.FS

// ChartJSPath is where scripts/vendor.sh puts Chart.js, relative to the site root.
const ChartJSPath = "vendor/chart.umd.min.js"

// Cache policies. The page is always revalidated so that a deploy is seen at
// once; the other files are not fingerprinted, so they are cached briefly and
// then revalidated cheaply with their ETag.
const (
	cachePage   = "no-cache"
	cacheAssets = "public, max-age=300"
)

// contentSecurityPolicy allows only our own files: no inline script, no CDN.
// connect-src names ws:/wss: for the heartbeat socket, which browsers do not
// all treat as 'self'.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; " +
	"frame-ancestors 'none'; form-action 'none'"

// contentTypes is fixed here rather than read from the system's mime tables,
// which differ between machines and images.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".txt":  "text/plain; charset=utf-8",
	".json": "application/json",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

type asset struct {
	body        []byte
	gz          []byte // nil when compressing does not pay
	contentType string
	etag        string
	cache       string
}

// Site is an http.Handler for the embedded dashboard.
type Site struct {
	assets map[string]*asset
}

var _ http.Handler = (*Site)(nil)

// New reads every embedded file.
func New() (*Site, error) {
	root, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	return newSite(root)
}

func newSite(root fs.FS) (*Site, error) {
	s := &Site{assets: map[string]*asset{}}
	err := fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("%s: no content type for %q", name, path.Ext(name))
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := &asset{
			body:        body,
			contentType: ctype,
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
			cache:       cacheAssets,
		}
		if name == "index.html" {
			a.cache = cachePage
		}
		if !strings.HasPrefix(ctype, "image/png") {
			a.gz = gzipIfSmaller(body)
		}
		s.assets[name] = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.assets["index.html"] == nil {
		return nil, fmt.Errorf("index.html is not embedded")
	}
	return s, nil
}

// gzipIfSmaller returns a gzip copy when it saves at least a tenth.
func gzipIfSmaller(body []byte) []byte {
	if len(body) < 1024 {
		return nil
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(body)
	_ = zw.Close()
	if buf.Len() > len(body)*9/10 {
		return nil
	}
	return buf.Bytes()
}

// HasChartJS reports whether Chart.js was vendored before the build.
func (s *Site) HasChartJS() bool { return s.assets[ChartJSPath] != nil }

// Files lists the served paths (without the leading slash).
func (s *Site) Files() []string {
	out := make([]string, 0, len(s.assets))
	for name := range s.assets {
		out = append(out, name)
	}
	return out
}

// ServeHTTP serves GET and HEAD for the embedded files; "/" is the page.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		apierr.WriteCode(w, apierr.CodeMethodNotAllowed, "method not allowed")
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	a := s.assets[name]
	if a == nil {
		apierr.WriteCode(w, apierr.CodeNotFound, "not found")
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", a.cache)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if a.contentType == contentTypes[".html"] {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
	}
	body, etag := a.body, a.etag
	if a.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			// Each encoding is its own representation, with its own ETag.
			h.Set("Content-Encoding", "gzip")
			body, etag = a.gz, strings.TrimSuffix(a.etag, `"`)+`-gz"`
		}
	}
	h.Set("ETag", etag)
	// ServeContent answers If-None-Match with 304 using the ETag set above,
	// and HEAD without a body.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

// acceptsGzip is a plain reading of Accept-Encoding: gzip listed and not
// refused with q=0.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
