// Go net/http backend for the differential suite (Debian's Go 1.19), behind
// an http.ServeMux with one "/" pattern, as most Go services route: the mux
// answers a path it would clean (`//`, `.`, `..` after decoding) with its own
// redirect, and the handler sees the rest. Two readings per request:
//
//	go-path      r.URL.Path (the whole path decoded once) split on '/';
//	go-escaped   r.URL.EscapedPath() split on '/', each segment decoded with
//	             url.PathUnescape (the raw-path routers: gorilla/mux with
//	             UseEncodedPath, chi's RawPath routing).
//
// Answers 200 {"readings": {...}}. Prints `listening on 127.0.0.1:PORT`.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
)

type reading struct {
	Segments []string `json:"segments,omitempty"`
	Error    string   `json:"error,omitempty"`
}

func split(p string) []string {
	if p == "" || p == "/" {
		return []string{}
	}
	return strings.Split(strings.TrimPrefix(p, "/"), "/")
}

func handle(w http.ResponseWriter, r *http.Request) {
	readings := map[string]reading{"go-path": {Segments: split(r.URL.Path)}}
	var escaped []string
	var bad string
	for _, s := range split(r.URL.EscapedPath()) {
		d, err := url.PathUnescape(s)
		if err != nil {
			bad = err.Error()
			break
		}
		escaped = append(escaped, d)
	}
	if bad != "" {
		readings["go-escaped"] = reading{Error: bad}
	} else {
		if escaped == nil {
			escaped = []string{}
		}
		readings["go-escaped"] = reading{Segments: escaped}
	}
	// Segments is "omitempty": the root's empty list must still be there.
	out := map[string]map[string]interface{}{"readings": {}}
	for name, rd := range readings {
		if rd.Error != "" {
			out["readings"][name] = map[string]string{"error": rd.Error}
		} else {
			out["readings"][name] = map[string][]string{"segments": rd.Segments}
		}
	}
	body, _ := json.Marshal(out)
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(200)
	w.Write(body)
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr().String())
	mux := http.NewServeMux()
	mux.HandleFunc("/", handle)
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
