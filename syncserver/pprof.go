package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// startProfiling serves Go's profiles on LEADIFY_PPROF_ADDR (for example
// 127.0.0.1:6060) when it is set: a loopback-only operator tool, off by default
// and never on the API's listener.
func startProfiling(log *slog.Logger) {
	addr := os.Getenv("LEADIFY_PPROF_ADDR")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil {
			log.Warn("profiling listener", "addr", addr, "err", err)
		}
	}()
}
