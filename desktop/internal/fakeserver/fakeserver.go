// Package fakeserver is an in-process stand-in for the Leadify server's
// AuthService and AccountsService, for the desktop's tests. It keeps users,
// stores and session tokens in memory, answers with the same Connect codes as the
// real server (Unauthenticated for bad credentials or tokens, ResourceExhausted
// with a Retry-After header after repeated failed logins) and counts the calls it
// receives so tests can check what the client did.
package fakeserver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
)

// MaxFailedLogins is how many wrong passwords an account may get before logins
// are refused with ResourceExhausted for RetryAfter.
const (
	MaxFailedLogins = 5
	RetryAfter      = 15 * time.Minute
)

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to give to a client, e.g. "http://127.0.0.1:40123".
	URL string

	srv *httptest.Server

	mu       sync.Mutex
	users    map[string]*account // by email
	tokens   map[string]string   // token → email
	stores   []*leadifyv1.Store
	members  map[string][]string // store id → emails
	calls    map[string]int      // procedure → count
	logins   []string            // emails of successful logins
	unusable bool
}

type account struct {
	user     *leadifyv1.User
	password string
	failures int
}

// Start starts a fake server and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		users:   map[string]*account{},
		tokens:  map[string]string{},
		members: map[string][]string{},
		calls:   map[string]int{},
	}
	mux := http.NewServeMux()
	mux.Handle(leadifyv1connect.NewAuthServiceHandler(&authHandler{s: s}))
	mux.Handle(leadifyv1connect.NewAccountsServiceHandler(&accountsHandler{s: s}))
	s.srv = httptest.NewServer(s.middleware(mux))
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// Close stops the server; later calls fail to connect.
func (s *Server) Close() { s.srv.Close() }

// SetUnavailable makes every call fail with 503 Service Unavailable (as a load
// balancer with no healthy server would) until called again with false.
func (s *Server) SetUnavailable(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unusable = down
}

// AddUser creates an account and returns its user.
func (s *Server) AddUser(email, password, fullName string) *leadifyv1.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := &leadifyv1.User{
		Id: uuid.NewString(), Email: email, FullName: fullName, CreatedAt: timestamppb.Now(),
	}
	s.users[strings.ToLower(email)] = &account{user: u, password: password}
	return proto.Clone(u).(*leadifyv1.User)
}

// AddStore adds a store whose members are the given emails; an empty Id is filled in.
func (s *Server) AddStore(st *leadifyv1.Store, memberEmails ...string) *leadifyv1.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	st = proto.Clone(st).(*leadifyv1.Store)
	if st.Id == "" {
		st.Id = uuid.NewString()
	}
	s.stores = append(s.stores, st)
	for _, e := range memberEmails {
		s.members[st.Id] = append(s.members[st.Id], strings.ToLower(e))
	}
	return proto.Clone(st).(*leadifyv1.Store)
}

// RevokeSessions invalidates every token issued so far.
func (s *Server) RevokeSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Calls returns how many requests reached procedure (e.g.
// leadifyv1connect.AuthServiceLoginProcedure), whatever their outcome.
func (s *Server) Calls(procedure string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[procedure]
}

// Logins returns the emails of the successful logins, in order.
func (s *Server) Logins() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.logins...)
}

func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[r.URL.Path]++
		down := s.unusable
		s.mu.Unlock()
		if down {
			http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// caller returns the account behind the request's bearer token.
func (s *Server) caller(h http.Header) (*account, error) {
	token, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	defer s.mu.Unlock()
	email, found := s.tokens[token]
	if !ok || !found {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("invalid or expired session"))
	}
	return s.users[email], nil
}

type authHandler struct {
	leadifyv1connect.UnimplementedAuthServiceHandler
	s *Server
}

var _ leadifyv1connect.AuthServiceHandler = (*authHandler)(nil)

func (h *authHandler) Login(_ context.Context, req *connect.Request[leadifyv1.LoginRequest]) (*connect.Response[leadifyv1.LoginResponse], error) {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	email := strings.ToLower(strings.TrimSpace(req.Msg.GetEmail()))
	acc := s.users[email]
	if acc != nil && acc.failures >= MaxFailedLogins {
		err := connect.NewError(connect.CodeResourceExhausted, errors.New("too many failed logins"))
		err.Meta().Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
		return nil, err
	}
	if acc == nil || acc.password != req.Msg.GetPassword() {
		if acc != nil {
			acc.failures++
		}
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("invalid email or password"))
	}
	acc.failures = 0
	token := uuid.NewString()
	s.tokens[token] = email
	s.logins = append(s.logins, email)
	return connect.NewResponse(&leadifyv1.LoginResponse{
		Token:     token,
		ExpiresAt: timestamppb.New(time.Now().Add(30 * 24 * time.Hour)),
		User:      proto.Clone(acc.user).(*leadifyv1.User),
	}), nil
}

func (h *authHandler) Logout(_ context.Context, req *connect.Request[leadifyv1.LogoutRequest]) (*connect.Response[leadifyv1.LogoutResponse], error) {
	if _, err := h.s.caller(req.Header()); err != nil {
		return nil, err
	}
	token := strings.TrimPrefix(req.Header().Get("Authorization"), "Bearer ")
	h.s.mu.Lock()
	delete(h.s.tokens, token)
	h.s.mu.Unlock()
	return connect.NewResponse(&leadifyv1.LogoutResponse{}), nil
}

func (h *authHandler) Me(_ context.Context, req *connect.Request[leadifyv1.MeRequest]) (*connect.Response[leadifyv1.MeResponse], error) {
	acc, err := h.s.caller(req.Header())
	if err != nil {
		return nil, err
	}
	res := &leadifyv1.MeResponse{User: proto.Clone(acc.user).(*leadifyv1.User)}
	for _, st := range h.s.visibleStores(acc) {
		res.Memberships = append(res.Memberships, &leadifyv1.Membership{
			StoreId: st.GetId(), StoreName: st.GetSettings().GetName(), SellerId: st.GetSellerId(),
			Role: leadifyv1.Role_ROLE_SELLER,
		})
	}
	return connect.NewResponse(res), nil
}

type accountsHandler struct {
	leadifyv1connect.UnimplementedAccountsServiceHandler
	s *Server
}

var _ leadifyv1connect.AccountsServiceHandler = (*accountsHandler)(nil)

func (h *accountsHandler) ListStores(_ context.Context, req *connect.Request[leadifyv1.ListStoresRequest]) (*connect.Response[leadifyv1.ListStoresResponse], error) {
	acc, err := h.s.caller(req.Header())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&leadifyv1.ListStoresResponse{Stores: h.s.visibleStores(acc)}), nil
}

func (s *Server) visibleStores(acc *account) []*leadifyv1.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*leadifyv1.Store
	email := strings.ToLower(acc.user.GetEmail())
	for _, st := range s.stores {
		if acc.user.GetPlatformAdmin() || slices.Contains(s.members[st.GetId()], email) {
			out = append(out, proto.Clone(st).(*leadifyv1.Store))
		}
	}
	return out
}
