package server

import (
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/api"
	"github.com/leadify/leadify/syncserver/intake/shop/shopsync"
)

// Every shopSweepInterval every shop connection's orders of the last
// shopSweepDays are read again: webhooks a shop never delivered are not lost.
const (
	shopSweepInterval = time.Hour
	shopSweepDays     = 2
)

// newShops returns a shops service the server closes when it stops: its
// webhook inbox (batchers and side pool) and its enqueueing goroutine.
func newShops(s *Server) *shopsync.Service {
	svc := shopsync.New(s.Pool, s.cfg.Secrets, s.Events, s.log.With("component", "shops"), func() *river.Client[pgx.Tx] { return s.River })
	svc.Now = s.cfg.Now
	svc.PublicURL = s.cfg.Billing.PublicURL
	s.own(svc.Close)
	return svc
}

// shopsCapability connects stores to their shops: connections, the webhook
// endpoint (verified, deduplicated, group-committed inbox), the jobs that
// turn orders into leads (webhooks and backfills) and read products, and
// the stock consumers of lead and parcel events.
var shopsCapability = capability{
	name: "shops",
	workers: func(s *Server, w *river.Workers) error {
		return newShops(s).Register(w)
	},
	start: func(ctx context.Context, s *Server) error {
		_, err := newShops(s).Recover(ctx)
		return err
	},
	periodic: func(*Server) []*river.PeriodicJob {
		return []*river.PeriodicJob{shopsync.Periodic(shopSweepInterval, shopSweepDays), shopsync.PeriodicRecover(time.Minute)}
	},
	routes: func(s *Server, mux *http.ServeMux, opts connect.HandlerOption) error {
		svc := newShops(s)
		mux.Handle(leadifyv1connect.NewShopsServiceHandler(api.NewShopsHandler(svc), opts))
		mux.HandleFunc(shopsync.WebhookRoute, svc.ServeWebhook)
		return nil
	},
}
