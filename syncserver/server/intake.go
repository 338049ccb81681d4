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
	"github.com/leadify/leadify/syncserver/intake/sheetsync"
)

// sheetSweepInterval is how often connections whose sync interval has passed
// get a sync queued.
const sheetSweepInterval = time.Minute

func newSheetSync(s *Server) *sheetsync.Service {
	return &sheetsync.Service{Pool: s.Pool, Keyring: s.cfg.Secrets, Endpoint: s.cfg.SheetsEndpoint, Now: s.cfg.Now,
		Log: s.log.With("component", "sheetsync"), PublicURL: s.cfg.Billing.PublicURL, River: func() *river.Client[pgx.Tx] { return s.River }}
}

// intakeCapability serves lead intake: file previews and imports, sheet
// connections and their syncs (River jobs, periodic and on demand), and the
// reports.
var intakeCapability = capability{
	name: "intake",
	workers: func(s *Server, w *river.Workers) error {
		return newSheetSync(s).Register(w)
	},
	start: func(ctx context.Context, s *Server) error {
		_, err := newSheetSync(s).Recover(ctx)
		return err
	},
	periodic: func(*Server) []*river.PeriodicJob {
		return []*river.PeriodicJob{sheetsync.Periodic(sheetSweepInterval)}
	},
	routes: func(s *Server, mux *http.ServeMux, opts connect.HandlerOption) error {
		// Uploads carry whole files: this service reads messages up to the
		// file limit plus room for the rest of the request.
		mux.Handle(leadifyv1connect.NewIntakeServiceHandler(api.NewIntakeHandler(newSheetSync(s)), opts,
			connect.WithReadMaxBytes(api.MaxImportFileBytes+1<<20)))
		// The Apps Script in connected sheets calls this on every change.
		mux.Handle(sheetsync.HookRoute, &sheetsync.Hook{S: newSheetSync(s)})
		return nil
	},
}
