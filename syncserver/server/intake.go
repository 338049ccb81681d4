package server

import (
	"net/http"

	"connectrpc.com/connect"

	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/api"
)

// intakeCapability serves lead intake: file previews and imports, and their
// reports.
var intakeCapability = capability{
	name: "intake",
	routes: func(s *Server, mux *http.ServeMux, opts connect.HandlerOption) error {
		// Uploads carry whole files: this service reads messages up to the
		// file limit plus room for the rest of the request.
		mux.Handle(leadifyv1connect.NewIntakeServiceHandler(api.NewIntakeHandler(s.Pool, s.cfg.Now, s.log), opts,
			connect.WithReadMaxBytes(api.MaxImportFileBytes+1<<20)))
		return nil
	},
}
