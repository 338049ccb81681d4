package server

import (
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/api"
	"github.com/leadify/leadify/syncserver/parcels"
)

// Fallback polling: every pollInterval, parcels without a carrier report for
// pollStale are tracked.
const (
	pollInterval = 10 * time.Minute
	pollStale    = 6 * time.Hour
	// Every sweepInterval, leads confirmed within sweepWindow in stores that
	// create parcels automatically and still without one get a creation job.
	sweepInterval = time.Minute
	sweepWindow   = 7 * 24 * time.Hour
)

// newParcels returns a parcels service the server closes when it stops
// (its inbox's batchers and its side pools).
func newParcels(s *Server) *parcels.Service {
	p := parcels.New(s.Pool, s.Events, s.cfg.Secrets, s.log.With("component", "parcels"), func() *river.Client[pgx.Tx] { return s.River })
	p.Now = s.cfg.Now
	s.own(p.Close)
	return p
}

// carriersCapability creates parcels at carriers (jobs, with per-account
// concurrency held by the workers' Service), receives carrier webhooks into
// the inbox, and polls silent parcels.
var carriersCapability = capability{
	name: "carriers",
	workers: func(s *Server, w *river.Workers) error {
		return newParcels(s).Register(w)
	},
	periodic: func(s *Server) []*river.PeriodicJob {
		return []*river.PeriodicJob{parcels.PeriodicPoll(pollInterval, pollStale), parcels.PeriodicSweep(sweepInterval, sweepWindow)}
	},
	routes: func(s *Server, mux *http.ServeMux, opts connect.HandlerOption) error {
		p := newParcels(s)
		mux.Handle(leadifyv1connect.NewCarrierServiceHandler(api.NewCarriersHandler(s.Pool, p, s.log), opts))
		mux.HandleFunc("GET "+parcels.WebhookPath, p.ServeWebhook)
		mux.HandleFunc("POST "+parcels.WebhookPath, p.ServeWebhook)
		return nil
	},
}
