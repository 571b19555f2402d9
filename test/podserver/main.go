// Command podserver is what the end-to-end tests run in a pod to have
// something to port-forward to: an HTTP server on each port given.
//
//	GET /          "hello from <hostname> on <port>"
//	GET /zero?n=N  N zero bytes (for throughput)
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: podserver PORT...")
	}
	host, _ := os.Hostname()
	zeros := make([]byte, 1<<20)
	errs := make(chan error)
	for _, port := range os.Args[1:] {
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "hello from %s on %s\n", host, port)
		})
		mux.HandleFunc("/zero", func(w http.ResponseWriter, r *http.Request) {
			n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
			if err != nil || n < 0 {
				http.Error(w, "n: a byte count", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			for n > 0 {
				k := min(n, int64(len(zeros)))
				if _, err := w.Write(zeros[:k]); err != nil {
					return
				}
				n -= k
			}
		})
		mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(w, r.Body) })
		go func() { errs <- http.ListenAndServe(":"+port, mux) }()
		fmt.Printf("listening on %s\n", port)
	}
	log.Fatal(<-errs)
}
