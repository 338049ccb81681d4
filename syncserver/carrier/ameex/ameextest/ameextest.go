// Package ameextest is a stateful fake of the Ameex API on an httptest
// server, quirks included: C-Api-Id/C-Api-Key headers, HTTP 200 for
// everything with {"login":"error"} for bad credentials or unknown paths and
// {"api":{"type":"error"}} for refused operations, numeric city ids, a
// parcel code that is sometimes missing from the Add answer (found through
// the Json list by order number), tracking keyed by numeric strings,
// MassTracking limited to 25 codes, Delete only before pickup, and form POST
// webhooks. Parcels move through realistic lifecycles each time Advance is
// called; fault modes slow or fail calls and delay, duplicate, reorder or
// drop webhooks.
package ameextest

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

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
	"unicode"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/syncserver/carrier"
	"github.com/leadify/leadify/syncserver/carrier/internal/fake"
)

// Options configure a Server.
type Options struct {
	APIID, APIKey string // default "test-id", "test-key"
	// Business, when set, is the only sender id Add accepts; Add without
	// it answers "Veuillez choisir l'expéditeur".
	Business     string
	Seed         uint64
	DeliveryRate float64
	CancelRate   float64
	// MissingCodeRate is the fraction of Add answers without the parcel
	// code (default 0.2; negative means never).
	MissingCodeRate float64
	// MassTrackingByIndex answers MassTracking with api.tracking keyed
	// "0", "1", … in the order of the codes asked instead of by code — a
	// shape CARRIERS.md does not rule out (it documents the request only).
	MassTrackingByIndex bool
	Faults              fake.Faults
	WebhookURL          string // receives form POST webhooks; empty sends none
	Now                 func() time.Time
}

// Server is a running fake.
// Faults are the fake's fault modes (see fake.Faults).
type Faults = fake.Faults

// Ack is a webhook delivery the receiver acknowledged (see fake.Sender.Acked).
type Ack = fake.Ack

// DefaultFaults are the faults tests run with by default.
var DefaultFaults = fake.DefaultFaults

type Server struct {
	*httptest.Server
	Sim      *fake.Sim
	Webhooks *fake.Sender

	opts     Options
	cities   []cityRow
	cityByID map[string]cityRow
	mu       sync.Mutex
}

type cityRow struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// NewServer starts a fake; it is closed when the test ends.
func NewServer(t interface{ Cleanup(func()) }, opts Options) *Server {
	if opts.APIID == "" {
		opts.APIID, opts.APIKey = "test-id", "test-key"
	}
	if opts.MissingCodeRate == 0 {
		opts.MissingCodeRate = 0.2
	}
	s := &Server{opts: opts, cityByID: map[string]cityRow{}}
	for i, c := range city.All() {
		// Ameex spells cities in capitals without accents ("FES").
		row := cityRow{ID: 100 + i*3, Name: strings.ToUpper(stripAccents(c.Name))}
		s.cities = append(s.cities, row)
		s.cityByID[strconv.Itoa(row.ID)] = row
	}
	s.Sim = fake.NewSim(fake.Options{Seed: opts.Seed, DeliveryRate: opts.DeliveryRate, CancelRate: opts.CancelRate, Faults: opts.Faults, Now: opts.Now}, lifecycle)
	s.Webhooks = fake.NewSender(s.Sim, nil)
	s.Sim.OnMove(s.notify)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() { s.Webhooks.Flush(); s.Close() })
	return s
}

func stripAccents(s string) string {
	out, _, _ := transform.String(transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC), s)
	return out
}

// CityID returns the Ameex id of a canonical city.
func (s *Server) CityID(c city.City) int {
	for i, cc := range city.All() {
		if cc.ID == c.ID {
			return s.cities[i].ID
		}
	}
	return 0
}

// StatusNames are the French names Ameex shows for its codes.
var StatusNames = map[string]string{
	"NEW_PARCEL": "Nouveau colis", "WAITING_PICKUP": "Attente de ramassage", "PICKED_UP": "Ramassé",
	"SENT": "Expédié", "RECEIVED": "Reçu", "DISTRIBUTION": "En distribution", "IN_PROGRESS": "En cours",
	"PROGRAMMED": "Programmé", "DELIVERED": "Livré", "RETURNED": "Retourné", "REFUSED": "Refusé",
	"CANCELED": "Annulé", "OUT_OF_AREA": "Hors zone",
}

var subNames = map[string]string{"NO_ANSWER": "Pas de réponse", "POSTPONED": "Reporté", "UNREACHABLE": "Injoignable"}

func lifecycle(rng *rand.Rand, o fake.Outcome) []fake.Step {
	st := func(names ...string) []fake.Step {
		out := make([]fake.Step, len(names))
		for i, n := range names {
			out[i] = fake.Step{Status: n}
		}
		return out
	}
	steps := st("NEW_PARCEL", "WAITING_PICKUP")
	if o == fake.Cancelled {
		return append(steps, st("CANCELED")...)
	}
	steps = append(steps, st("PICKED_UP", "SENT", "RECEIVED", "DISTRIBUTION")...)
	if rng.IntN(3) == 0 {
		steps = append(steps, fake.Step{Status: "IN_PROGRESS", Sub: "NO_ANSWER"}, fake.Step{Status: "PROGRAMMED"}, fake.Step{Status: "DISTRIBUTION"})
	}
	if o == fake.Delivered {
		return append(steps, st("DELIVERED")...)
	}
	refuse := "REFUSED"
	if rng.IntN(2) == 0 {
		refuse = "REFUSE" // both spellings are seen
	}
	return append(steps, st(refuse, "RETURNED")...)
}

func (s *Server) notify(p fake.Parcel, st fake.Step) {
	hook := s.webhookURL()
	if hook == "" {
		return
	}
	v := url.Values{
		"CODE": {p.Code}, "STATUT": {st.Status}, "STATUT_NAME": {StatusNames[st.Status]}, "STATUT_COLOR": {"#2e7d32"},
		"STATUT_S": {st.Sub}, "STATUT_S_NAME": {subNames[st.Sub]}, "COMMENT": {st.Note},
		"DATE": {st.At.In(carrier.Morocco).Format("2006-01-02 15:04:05")},
	}
	req, _ := http.NewRequest(http.MethodPost, hook, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.Webhooks.Send(req)
}

func reply(w http.ResponseWriter, api any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"login": "success", "api": api})
}

func replyError(w http.ResponseWriter, msg string) {
	reply(w, map[string]string{"type": "error", "msg": msg})
}

func loginError(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"login":"error","api":null}`))
}

const prefix = "/customer/Delivery"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.URL.Path, prefix)
	if s.Sim.Intercept(w, r, op) {
		return
	}
	if r.Header.Get("C-Api-Id") != s.opts.APIID || r.Header.Get("C-Api-Key") != s.opts.APIKey {
		loginError(w)
		return
	}
	if err := r.ParseMultipartForm(1 << 20); err != nil && err != http.ErrNotMultipart {
		replyError(w, "Requête invalide")
		return
	}
	switch {
	case op == "/Parcels/Action/Type/Add" && r.Method == http.MethodPost:
		s.add(w, r)
	case op == "/Cities" && r.Method == http.MethodGet:
		reply(w, map[string]any{"type": "success", "cities": s.cities})
	case op == "/Parcels/Tracking" && r.Method == http.MethodGet:
		s.tracking(w, r.URL.Query().Get("ParcelCode"))
	case op == "/Parcels/MassTracking" && r.Method == http.MethodPost:
		s.massTracking(w, r.PostForm.Get("codes"))
	case op == "/Parcels/Info" && r.Method == http.MethodGet:
		s.info(w, r.URL.Query().Get("ParcelCode"))
	case op == "/Parcels/Json" && r.Method == http.MethodPost:
		s.list(w, r.PostForm)
	case op == "/Parcels/Statuts" && r.Method == http.MethodGet:
		s.statuts(w)
	case op == "/Parcels/Action/Type/Delete":
		s.delete(w, r.URL.Query().Get("ParcelCode"))
	default:
		loginError(w) // Ameex answers unknown paths like bad credentials
	}
}

func (s *Server) add(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	if s.opts.Business != "" && f.Get("business") != s.opts.Business {
		replyError(w, "Veuillez choisir l'expéditeur")
		return
	}
	for _, k := range []string{"receiver", "phone", "city", "address", "order_num"} {
		if strings.TrimSpace(f.Get(k)) == "" {
			replyError(w, "Le champ "+k+" est obligatoire")
			return
		}
	}
	if _, ok := s.cityByID[f.Get("city")]; !ok {
		replyError(w, "Ville invalide")
		return
	}
	if cod, err := strconv.ParseFloat(f.Get("cod"), 64); err != nil || cod <= 0 {
		replyError(w, "Le montant (COD) doit être supérieur à 0")
		return
	}
	fields := map[string]string{}
	for k := range f {
		fields[k] = f.Get(k)
	}
	p := s.Sim.Create("MRK", f.Get("order_num"), fields)
	out := map[string]any{"type": "success", "msg": "Colis ajouté avec succès"}
	if s.opts.MissingCodeRate < 0 || s.Sim.Float() >= s.opts.MissingCodeRate {
		out["parcel"] = map[string]string{"code": p.Code}
	}
	reply(w, out)
}

type trackEntry struct {
	Statut     string `json:"statut"`
	StatutName string `json:"statut_name"`
	Time       int64  `json:"time"`
	TimeStr    string `json:"time_str"`
	CityName   string `json:"city_name,omitempty"`
	HubName    string `json:"hub_name,omitempty"`
}

func history(p fake.Parcel) map[string]trackEntry {
	out := map[string]trackEntry{}
	for i, st := range p.History {
		e := trackEntry{Statut: st.Status, StatutName: StatusNames[st.Status], Time: st.At.Unix(), TimeStr: st.At.In(carrier.Morocco).Format("02/01/2006 15:04")}
		if i%2 == 0 {
			e.HubName = "HUB CASABLANCA"
		} else {
			e.CityName = "CASABLANCA"
		}
		out[strconv.Itoa(i)] = e
	}
	return out
}

func (s *Server) tracking(w http.ResponseWriter, code string) {
	p, ok := s.Sim.Get(strings.TrimSpace(code))
	if !ok {
		replyError(w, "Colis introuvable")
		return
	}
	reply(w, map[string]any{"type": "success", "tracking": history(p)})
}

func (s *Server) massTracking(w http.ResponseWriter, codes string) {
	list := strings.Split(codes, ",")
	if len(list) > 25 {
		replyError(w, "25 colis maximum par requête")
		return
	}
	out := map[string]any{}
	for i, c := range list {
		if p, ok := s.Sim.Get(strings.TrimSpace(c)); ok {
			if s.opts.MassTrackingByIndex {
				out[strconv.Itoa(i)] = history(p)
			} else {
				out[p.Code] = history(p)
			}
		}
	}
	reply(w, map[string]any{"type": "success", "tracking": out})
}

func (s *Server) info(w http.ResponseWriter, code string) {
	p, ok := s.Sim.Get(strings.TrimSpace(code))
	if !ok {
		replyError(w, "Colis introuvable")
		return
	}
	cur := p.Current()
	reply(w, map[string]any{"type": "success", "parcel": map[string]any{
		"code": p.Code, "order_num": p.OrderRef, "receiver": p.Fields["receiver"], "statut": cur.Status, "statut_name": StatusNames[cur.Status],
	}})
}

// list is the DataTables endpoint: search[value] matches code, order
// number, receiver or phone as a substring.
func (s *Server) list(w http.ResponseWriter, f url.Values) {
	start, _ := strconv.Atoi(f.Get("start"))
	length, _ := strconv.Atoi(f.Get("length"))
	if length <= 0 {
		length = 10
	}
	q := strings.ToLower(strings.TrimSpace(f.Get("search[value]")))
	var rows []map[string]string
	for _, p := range s.Sim.All() {
		hay := strings.ToLower(strings.Join([]string{p.Code, p.OrderRef, p.Fields["receiver"], p.Fields["phone"]}, " "))
		if q == "" || strings.Contains(hay, q) {
			rows = append(rows, map[string]string{"TBL_CODE": p.Code, "TBL_ORDER_NUM": p.OrderRef, "TBL_RECEIVER": p.Fields["receiver"], "TBL_STATUT": p.Current().Status})
		}
	}
	total := len(rows)
	rows = rows[min(start, total):min(start+length, total)]
	if rows == nil {
		rows = []map[string]string{}
	}
	reply(w, map[string]any{"aaData": rows, "iTotalDisplayRecords": total, "iTotalRecords": total})
}

func (s *Server) statuts(w http.ResponseWriter) {
	var list []map[string]string
	for code, name := range StatusNames {
		list = append(list, map[string]string{"code": code, "name": name})
	}
	reply(w, map[string]any{"type": "success", "statuts": list})
}

func (s *Server) delete(w http.ResponseWriter, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.Sim.Get(code); !ok {
		replyError(w, "Colis introuvable")
		return
	}
	if !s.Sim.Delete(code, func(st fake.Step) bool { return st.Status != "NEW_PARCEL" && st.Status != "WAITING_PICKUP" }) {
		replyError(w, "Impossible de supprimer un colis déjà ramassé")
		return
	}
	reply(w, map[string]string{"type": "success", "msg": "Colis supprimé"})
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
