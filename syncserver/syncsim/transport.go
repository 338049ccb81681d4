package syncsim

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
)

// errFault is what a client sees when the simulated network fails a call.
var errFault = errors.New("simulated network fault")

// transport carries one client's calls to the server handler in process,
// with the simulation choosing each call's fate: delivered, dropped before the
// server sees it, dropped after (the server acts, the client never hears),
// delivered twice, or held back and delivered later (reordered after calls
// that follow it).
type transport struct {
	sim     *Sim
	name    string
	offline bool
	faults  bool
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body.Close()
	if tr.offline {
		tr.sim.count(tr.sim.report.Faults, "offline")
		return nil, errFault
	}
	fate := "deliver"
	if tr.faults {
		fate = tr.sim.pick(map[string]int{"deliver": 80, "drop-request": 5, "drop-reply": 6, "duplicate": 5, "delay": 4})
	}
	if fate != "deliver" {
		tr.sim.count(tr.sim.report.Faults, fate)
	}
	switch fate {
	case "drop-request":
		return nil, errFault
	case "delay":
		tr.sim.delayed = append(tr.sim.delayed, delayedCall{req: req, body: body})
		return nil, errFault
	case "drop-reply":
		tr.sim.serve(req, body)
		return nil, errFault
	case "duplicate":
		tr.sim.serve(req, body)
	}
	return tr.sim.serve(req, body), nil
}

type delayedCall struct {
	req  *http.Request
	body []byte
}

// serve runs one call through the real server handler.
func (s *Sim) serve(req *http.Request, body []byte) *http.Response {
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.RemoteAddr = "127.0.0.1:4242"
	rec := httptest.NewRecorder()
	s.srv.Handler.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = req
	return resp
}
