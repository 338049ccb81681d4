package server

import (
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/syncserver/customers"
)

// customersCapability keeps customers' delivery history on the leads agents
// call (a domain-event consumer; no routes of its own).
var customersCapability = capability{
	name: "customers",
	workers: func(s *Server, _ *river.Workers) error {
		customers.Subscribe(s.Events)
		return nil
	},
}
