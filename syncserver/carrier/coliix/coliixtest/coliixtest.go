// Package coliixtest is a stateful fake of the Coliix API on an httptest
// server, quirks included: one form-encoded endpoint, errors with HTTP 200
// and a numeric "status", a boolean "status" on track, status strings with
// trailing spaces, times with a stray space before the seconds, an empty
// history for unknown codes, and status callbacks sent as a GET (or a form
// POST) to a registered URL. Parcels move through realistic lifecycles each
// time Advance is called; fault modes slow or fail calls and delay,
// duplicate, reorder or drop callbacks.
package coliixtest

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/syncserver/carrier"
	"github.com/leadify/leadify/syncserver/carrier/internal/fake"
)

// Options configure a Server.
type Options struct {
	Token        string // the account's token; empty means "test-token"
	Seed         uint64
	DeliveryRate float64 // default 0.7
	CancelRate   float64 // default 0.03
	Faults       fake.Faults
	// WebhookURL receives status callbacks; empty sends none.
	WebhookURL string
	// WebhookPost sends callbacks as form POSTs instead of GETs.
	WebhookPost bool
	Now         func() time.Time
}

// Faults are the fake's fault modes (see fake.Faults).
type Faults = fake.Faults

// Ack is a webhook delivery the receiver acknowledged (see fake.Sender.Acked).
type Ack = fake.Ack

// DefaultFaults are the faults tests run with by default.
var DefaultFaults = fake.DefaultFaults

// Server is a running fake.
type Server struct {
	*httptest.Server
	// Endpoint is the API URL to give the client (the server URL plus a
	// hub path).
	Endpoint string
	Sim      *fake.Sim
	Webhooks *fake.Sender

	opts     Options
	mu       sync.Mutex
	disabled bool
	cities   map[string]bool
}

// NewServer starts a fake; it is closed when the test ends.
func NewServer(t interface{ Cleanup(func()) }, opts Options) *Server {
	if opts.Token == "" {
		opts.Token = "test-token"
	}
	s := &Server{opts: opts, cities: map[string]bool{}}
	for _, c := range city.All() {
		s.cities[strings.ToLower(c.Name)] = true
	}
	s.Sim = fake.NewSim(fake.Options{Seed: opts.Seed, DeliveryRate: opts.DeliveryRate, CancelRate: opts.CancelRate, Faults: opts.Faults, Now: opts.Now}, lifecycle)
	s.Webhooks = fake.NewSender(s.Sim, nil)
	s.Sim.OnMove(s.notify)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	s.Endpoint = s.URL + "/casa/seller/api-parcels"
	t.Cleanup(func() { s.Webhooks.Flush(); s.Close() })
	return s
}

// Disable makes every call answer {"status":204,"msg":"Le compte est désactivé"}.
func (s *Server) Disable() {
	s.mu.Lock()
	s.disabled = true
	s.mu.Unlock()
}

// Lifecycle steps. Trailing spaces are Coliix's.
func lifecycle(rng *rand.Rand, o fake.Outcome) []fake.Step {
	st := func(names ...string) []fake.Step {
		out := make([]fake.Step, len(names))
		for i, n := range names {
			out[i] = fake.Step{Status: n}
		}
		return out
	}
	steps := st("Nouveau Colis ", "Attente De Ramassage")
	if o == fake.Cancelled {
		return append(steps, st("Annulé Par Vendeur")...)
	}
	steps = append(steps, st("Ramassé ", "Expédié", "Reçu", "Mise en distribution")...)
	if rng.IntN(3) == 0 {
		steps = append(steps, st("Pas de réponse", "Reporté", "Mise en distribution")...)
	}
	if o == fake.Delivered {
		return append(steps, st("Confirmer par le livreur", "Livré ")...)
	}
	return append(steps, st("Client pas intéressé", "Refusé", "En retour par AMANA", "Retourné ")...)
}

// coliixTime formats t the way Coliix does, with a space before the seconds.
func coliixTime(t time.Time) string {
	return t.In(moroccoZone).Format("2006-01-02 15:04") + " :" + t.In(moroccoZone).Format("05")
}

var moroccoZone = carrier.Morocco

func (s *Server) notify(p fake.Parcel, st fake.Step) {
	hook := s.webhookURL()
	if hook == "" {
		return
	}
	v := url.Values{"code": {p.Code}, "state": {st.Status}, "datereported": {coliixTime(st.At)}, "note": {st.Note}}
	var req *http.Request
	if s.opts.WebhookPost {
		req, _ = http.NewRequest(http.MethodPost, hook, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		u := hook
		if strings.Contains(u, "?") {
			u += "&" + v.Encode()
		} else {
			u += "?" + v.Encode()
		}
		req, _ = http.NewRequest(http.MethodGet, u, nil)
	}
	s.Webhooks.Send(req)
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

type msg struct {
	Status int    `json:"status"`
	Msg    string `json:"msg"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "<html><head><title>405 Not Allowed</title></head></html>", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		reply(w, msg{400, "Requête invalide"})
		return
	}
	action := r.PostForm.Get("action")
	if s.Sim.Intercept(w, r, action) {
		return
	}
	s.mu.Lock()
	disabled := s.disabled
	s.mu.Unlock()
	switch {
	case r.PostForm.Get("token") != s.opts.Token:
		reply(w, msg{401, "Token invalide ou expiré"})
	case disabled:
		reply(w, msg{204, "Le compte est désactivé"})
	case action == "add":
		s.add(w, r.PostForm)
	case action == "track":
		s.track(w, r.PostForm.Get("tracking"))
	default:
		reply(w, msg{400, "Action inconnue"})
	}
}

func (s *Server) add(w http.ResponseWriter, f url.Values) {
	for _, k := range []string{"name", "phone", "ville", "adresse", "price"} {
		if strings.TrimSpace(f.Get(k)) == "" {
			reply(w, msg{400, "Le champ " + k + " est obligatoire"})
			return
		}
	}
	if !s.cities[strings.ToLower(strings.TrimSpace(f.Get("ville")))] {
		reply(w, msg{400, "Ville introuvable"})
		return
	}
	if price, err := strconv.ParseFloat(f.Get("price"), 64); err != nil || price < 0 {
		reply(w, msg{400, "Prix invalide"})
		return
	}
	fields := map[string]string{}
	for k := range f {
		if k != "token" {
			fields[k] = f.Get(k)
		}
	}
	p := s.Sim.Create("4-CSA", "", fields)
	reply(w, map[string]any{"status": 200, "msg": "Commande ajoutée avec succès", "tracking": p.Code})
}

func (s *Server) track(w http.ResponseWriter, code string) {
	p, ok := s.Sim.Get(strings.TrimSpace(code))
	type entry struct {
		Code   string `json:"code"`
		Status string `json:"status"`
		Time   string `json:"time"`
		Etat   string `json:"etat"`
	}
	hist := []entry{}
	if ok {
		etat := "Non Payé"
		if p.Paid {
			etat = "Payé"
		}
		for _, st := range p.History {
			hist = append(hist, entry{Code: p.Code, Status: st.Status, Time: coliixTime(st.At), Etat: etat})
		}
	}
	out := map[string]any{"status": true, "msg": hist, "tracking": code}
	if ok {
		out["delivery"] = map[string]string{"name": "Livreur Casa", "phone": "0600000000"}
	}
	reply(w, out)
}

// SetWebhookURL registers the URL status callbacks are sent to (empty
// stops them), as a seller does in the carrier's dashboard.
func (s *Server) SetWebhookURL(u string) {
	s.mu.Lock()
	s.opts.WebhookURL = u
	s.mu.Unlock()
}

func (s *Server) webhookURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.WebhookURL
}
