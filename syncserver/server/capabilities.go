package server

import (
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/api"
	"github.com/leadify/leadify/syncserver/syncer"
)

// A capability plugs one part of the product into the server: its River
// workers and periodic jobs (registered before the River client exists) and
// its HTTP routes (Connect services, webhooks). Each capability lives in its
// own file; this list is the only place they are named.
type capability struct {
	name     string
	workers  func(s *Server, w *river.Workers) error
	periodic func(s *Server) []*river.PeriodicJob
	routes   func(s *Server, mux *http.ServeMux, opts connect.HandlerOption) error
	// start runs when an instance that works jobs starts (work its
	// predecessor left behind: a sync killed with its server).
	start func(ctx context.Context, s *Server) error
}

var capabilities = []capability{
	accountsCapability,
	syncCapability,
	intakeCapability,
	carriersCapability,
	billingCapability,
	shopsCapability,
	customersCapability,
}

var accountsCapability = capability{
	name: "accounts",
	routes: func(s *Server, mux *http.ServeMux, opts connect.HandlerOption) error {
		mux.Handle(leadifyv1connect.NewAuthServiceHandler(api.NewAuthHandler(s.Pool, s.Auth, s.log), opts))
		mux.Handle(leadifyv1connect.NewAccountsServiceHandler(api.NewAccountsHandler(s.Pool, s.Events, s.log), opts))
		return nil
	},
}

var syncCapability = capability{
	name: "sync",
	workers: func(s *Server, w *river.Workers) error {
		now := s.cfg.Now
		if now == nil {
			now = time.Now
		}
		return river.AddWorkerSafely(w, &syncer.PurgeWorker{Pool: s.Pool, Retention: syncer.DefaultRetention, Now: now})
	},
	periodic: func(*Server) []*river.PeriodicJob {
		return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(6*time.Hour),
			func() (river.JobArgs, *river.InsertOpts) { return syncer.PurgeArgs{}, nil }, nil)}
	},
	routes: func(s *Server, mux *http.ServeMux, opts connect.HandlerOption) error {
		mux.Handle(leadifyv1connect.NewSyncServiceHandler(api.NewSyncHandler(s.Sync, s.Hub, s.Auth, s.log), opts))
		return nil
	},
}
