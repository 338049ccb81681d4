package server

import (
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/syncserver/customers"
)

// customersCapability keeps customers' delivery history on the leads agents
// call (a domain-event consumer and its follow-up job; no routes of its own).
var customersCapability = capability{
	name: "customers",
	workers: func(s *Server, w *river.Workers) error {
		customers.Subscribe(s.Events)
		return river.AddWorkerSafely(w, customers.NewHistoryWorker(s.Pool))
	},
}
