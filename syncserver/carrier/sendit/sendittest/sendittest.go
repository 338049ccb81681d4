// Package sendittest is a stateful fake of the Sendit API on an httptest
// server: JSON REST under /api/v1, POST /login trading the account's keys
// for a bearer token (which the fake can expire), paginated districts,
// deliveries created, listed by reference and tracked by code, and JSON
// webhooks to a registered URL. Parcels move through realistic lifecycles
// each time Advance is called; fault modes slow or fail calls and delay,
// duplicate, reorder or drop webhooks.
package sendittest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
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
	PublicKey, SecretKey string // default "test-public", "test-secret"
	Seed                 uint64
	DeliveryRate         float64
	CancelRate           float64
	Faults               fake.Faults
	WebhookURL           string // receives JSON webhooks; empty sends none
	// ListIgnoresReference makes GET /deliveries list every delivery,
	// whatever its reference parameter (CARRIERS.md documents no filter).
	ListIgnoresReference bool
	// NoReference makes deliveries keep no reference (CARRIERS.md lists
	// none among the creation fields): answers carry none.
	NoReference bool
	Now         func() time.Time
}

// PageSize is the number of districts per page.
const PageSize = 50

// Server is a running fake.
// Faults are the fake's fault modes (see fake.Faults).
type Faults = fake.Faults

// Ack is a webhook delivery the receiver acknowledged (see fake.Sender.Acked).
type Ack = fake.Ack

// DefaultFaults are the faults tests run with by default.
var DefaultFaults = fake.DefaultFaults

type Server struct {
	*httptest.Server
	// BaseURL is the API root to give the client (…/api/v1).
	BaseURL  string
	Sim      *fake.Sim
	Webhooks *fake.Sender

	opts      Options
	districts []district
	byID      map[int]bool
	mu        sync.Mutex
	tokens    map[string]bool
	logins    int
}

type district struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// NewServer starts a fake; it is closed when the test ends.
func NewServer(t interface{ Cleanup(func()) }, opts Options) *Server {
	if opts.PublicKey == "" {
		opts.PublicKey, opts.SecretKey = "test-public", "test-secret"
	}
	s := &Server{opts: opts, byID: map[int]bool{}, tokens: map[string]bool{}}
	for i, c := range city.All() {
		d := district{ID: 1 + i*7, Name: c.Name}
		s.districts = append(s.districts, d)
		s.byID[d.ID] = true
	}
	s.Sim = fake.NewSim(fake.Options{Seed: opts.Seed, DeliveryRate: opts.DeliveryRate, CancelRate: opts.CancelRate, Faults: opts.Faults, Now: opts.Now}, lifecycle)
	s.Webhooks = fake.NewSender(s.Sim, nil)
	s.Sim.OnMove(s.notify)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	s.BaseURL = s.URL + "/api/v1"
	t.Cleanup(func() { s.Webhooks.Flush(); s.Close() })
	return s
}

// ExpireTokens invalidates every issued token, as Sendit does after a while.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	s.tokens = map[string]bool{}
	s.mu.Unlock()
}

// Logins returns how many successful logins the fake answered.
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

func lifecycle(rng *mrand.Rand, o fake.Outcome) []fake.Step {
	st := func(names ...string) []fake.Step {
		out := make([]fake.Step, len(names))
		for i, n := range names {
			out[i] = fake.Step{Status: n}
		}
		return out
	}
	steps := st("PENDING")
	if o == fake.Cancelled {
		return append(steps, st("CANCELED")...)
	}
	steps = append(steps, st("PICKED_UP", "IN_TRANSIT", "DISTRIBUTED")...)
	if rng.IntN(3) == 0 {
		steps = append(steps, st("NO_ANSWER", "POSTPONED", "DISTRIBUTED")...)
	}
	if o == fake.Delivered {
		return append(steps, st("DELIVERED")...)
	}
	return append(steps, st("REJECTED", "RETURNED")...)
}

func sendTime(t time.Time) string {
	return t.In(carrier.Morocco).Format("2006-01-02 15:04:05")
}

func (s *Server) notify(p fake.Parcel, st fake.Step) {
	hook := s.webhookURL()
	if hook == "" {
		return
	}
	b, _ := json.Marshal(map[string]string{"code": p.Code, "status": st.Status, "date": sendTime(st.At), "comment": st.Note, "reference": p.OrderRef})
	req, _ := http.NewRequest(http.MethodPost, hook, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	s.Webhooks.Send(req)
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]any{"success": false, "message": msg})
}

func ok(w http.ResponseWriter, data any) {
	reply(w, http.StatusOK, map[string]any{"success": true, "message": "", "data": data})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path, found := strings.CutPrefix(r.URL.Path, "/api/v1")
	if !found {
		fail(w, http.StatusNotFound, "Not found")
		return
	}
	if s.Sim.Intercept(w, r, r.Method+" "+path) {
		return
	}
	if path == "/login" && r.Method == http.MethodPost {
		s.login(w, r)
		return
	}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	valid := s.tokens[token]
	s.mu.Unlock()
	if !valid {
		fail(w, http.StatusUnauthorized, "Unauthenticated.")
		return
	}
	switch {
	case path == "/districts" && r.Method == http.MethodGet:
		s.listDistricts(w, r)
	case r.Method == http.MethodPost && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		// JSON REST: a body in any other form reaches validation empty.
		fail(w, http.StatusUnprocessableEntity, "The given data was invalid.")
	case path == "/deliveries" && r.Method == http.MethodPost:
		s.create(w, r)
	case path == "/deliveries" && r.Method == http.MethodGet:
		s.byReference(w, r.URL.Query().Get("reference"))
	case strings.HasPrefix(path, "/deliveries/") && r.Method == http.MethodGet:
		s.track(w, strings.TrimPrefix(path, "/deliveries/"))
	default:
		fail(w, http.StatusNotFound, "Not found")
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PublicKey string `json:"public_key"`
		SecretKey string `json:"secret_key"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, http.StatusUnprocessableEntity, "Invalid JSON")
		return
	}
	if in.PublicKey != s.opts.PublicKey || in.SecretKey != s.opts.SecretKey {
		fail(w, http.StatusUnauthorized, "Invalid credentials")
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	s.mu.Lock()
	s.tokens[token] = true
	s.logins++
	s.mu.Unlock()
	ok(w, map[string]string{"token": token})
}

func (s *Server) listDistricts(w http.ResponseWriter, r *http.Request) {
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	last := (len(s.districts) + PageSize - 1) / PageSize
	from := min((page-1)*PageSize, len(s.districts))
	rows := s.districts[from:min(from+PageSize, len(s.districts))]
	ok(w, map[string]any{"current_page": page, "last_page": last, "per_page": PageSize, "total": len(s.districts), "data": rows})
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Reference  string          `json:"reference"`
		DistrictID int             `json:"district_id"`
		Name       string          `json:"name"`
		Phone      string          `json:"phone"`
		Address    string          `json:"address"`
		Amount     float64         `json:"amount"`
		Products   json.RawMessage `json:"products"`
		AllowOpen  *bool           `json:"allow_open"`
		Comment    string          `json:"comment"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, http.StatusUnprocessableEntity, "Invalid JSON")
		return
	}
	switch {
	case !s.byID[in.DistrictID]:
		fail(w, http.StatusUnprocessableEntity, "The selected district id is invalid.")
		return
	case strings.TrimSpace(in.Name) == "" || strings.TrimSpace(in.Phone) == "" || strings.TrimSpace(in.Address) == "":
		fail(w, http.StatusUnprocessableEntity, "The name, phone and address fields are required.")
		return
	case in.Amount < 0:
		fail(w, http.StatusUnprocessableEntity, "The amount must be at least 0.")
		return
	case len(in.Products) == 0 || string(in.Products) == "null" || in.AllowOpen == nil:
		fail(w, http.StatusUnprocessableEntity, "The products and allow open fields are required.")
		return
	}
	ref := in.Reference
	if s.opts.NoReference {
		ref = ""
	}
	p := s.Sim.Create("SND", ref, map[string]string{
		"name": in.Name, "phone": in.Phone, "address": in.Address, "district_id": strconv.Itoa(in.DistrictID),
		"amount": fmt.Sprint(in.Amount), "products": string(in.Products), "allow_open": strconv.FormatBool(*in.AllowOpen),
		"comment": in.Comment, "reference": in.Reference,
	})
	ok(w, s.row(p))
}

// row is a delivery as lists and creation answers show it.
func (s *Server) row(p fake.Parcel) map[string]any {
	out := map[string]any{"code": p.Code, "status": p.Current().Status}
	if !s.opts.NoReference {
		out["reference"] = p.OrderRef
	}
	return out
}

func (s *Server) byReference(w http.ResponseWriter, ref string) {
	rows := []map[string]any{}
	list := s.Sim.ByOrderRef(ref)
	if s.opts.ListIgnoresReference || s.opts.NoReference {
		list = s.Sim.All()
	}
	for _, p := range list {
		rows = append(rows, s.row(p))
	}
	last := 1
	if len(rows) > PageSize {
		rows, last = rows[:PageSize], (len(rows)+PageSize-1)/PageSize
	}
	ok(w, map[string]any{"current_page": 1, "last_page": last, "data": rows})
}

func (s *Server) track(w http.ResponseWriter, code string) {
	p, found := s.Sim.Get(code)
	if !found {
		fail(w, http.StatusNotFound, "Delivery not found")
		return
	}
	var hist []map[string]string
	for _, st := range p.History {
		hist = append(hist, map[string]string{"status": st.Status, "created_at": sendTime(st.At), "comment": st.Note})
	}
	cur := p.Current()
	out := s.row(p)
	out["last_action_at"], out["history"] = sendTime(cur.At), hist
	ok(w, out)
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
