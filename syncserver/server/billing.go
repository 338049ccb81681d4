package server

import (
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/api"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/remit"
)

// billingSource is where commission runs and invoices read parcels from.
func billingSource(s *Server) billing.ParcelSource { return parcels.BillingSource{Pool: s.Pool} }

// newBilling wires commission runs and invoices. Invoices read the same
// parcels with their carrier fees: charged (from the carrier's remittance
// statement) or expected (from the account's price list).
func newBilling(s *Server) (*billing.Runner, *billing.Service) {
	src := billingSource(s)
	reserve := postgres.NewSidePool(s.Pool, 2)
	s.own(reserve.Close)
	return &billing.Runner{Pool: s.Pool, Source: src, Reserve: reserve},
		&billing.Service{Pool: s.Pool, Source: remit.FeeSource{Inner: src, Pool: s.Pool}, Secrets: s.cfg.Secrets,
			Config: s.cfg.Billing, Now: s.cfg.Now}
}

// billingCapability runs commissions (on demand, and daily for every store),
// reverses them on parcel events, closes each month's invoices on the 1st
// (idempotently, so a daily check suffices), and serves the BillingService
// and the public invoice verification page.
var billingCapability = capability{
	name: "billing",
	workers: func(s *Server, w *river.Workers) error {
		billing.Subscribe(s.Events)
		runner, svc := newBilling(s)
		if err := river.AddWorkerSafely(w, &billing.CommissionRunWorker{Runner: runner}); err != nil {
			return err
		}
		if err := river.AddWorkerSafely(w, &billing.CommissionSweepWorker{Pool: s.Pool, Now: s.cfg.Now}); err != nil {
			return err
		}
		if err := river.AddWorkerSafely(w, &billing.InvoiceBatchWorker{Service: svc}); err != nil {
			return err
		}
		return river.AddWorkerSafely(w, &billing.InvoiceStoreWorker{Service: svc})
	},
	periodic: func(s *Server) []*river.PeriodicJob {
		now := s.cfg.Now
		if now == nil {
			now = time.Now
		}
		return []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(24*time.Hour),
				func() (river.JobArgs, *river.InsertOpts) { return billing.CommissionSweepArgs{}, nil }, nil),
			river.NewPeriodicJob(river.PeriodicInterval(24*time.Hour),
				func() (river.JobArgs, *river.InsertOpts) { return billing.PreviousMonth(now()), nil }, nil),
		}
	},
	routes: func(s *Server, mux *http.ServeMux, opts connect.HandlerOption) error {
		runner, svc := newBilling(s)
		enqueue := func(ctx context.Context, args billing.CommissionRunArgs) (int64, error) {
			res, err := s.River.Insert(ctx, args, nil)
			if err != nil {
				return 0, err
			}
			return res.Job.ID, nil
		}
		mux.Handle(leadifyv1connect.NewBillingServiceHandler(api.NewBillingHandler(runner, svc, enqueue, s.log), opts))
		mux.Handle("GET "+billing.VerifyPath, svc.VerifyHandler())
		return nil
	},
}
