// Package serverclient is the desktop's connection to the Leadify server: the
// generated Connect clients behind one base URL, a bearer-token interceptor and a
// per-call timeout, with every failure turned into an *Error whose message can be
// shown to the user as it is ("wrong email or password", "server unreachable —
// working offline").
package serverclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
)

// DefaultTimeout bounds each call when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config says which server to talk to and as whom.
type Config struct {
	// BaseURL is the server's address, e.g. "https://leadify.example.ma".
	BaseURL string
	// Token is the session token sent as "Authorization: Bearer <token>"; empty
	// before sign-in.
	Token string
	// Timeout bounds each call; DefaultTimeout when zero.
	Timeout time.Duration
}

// Client calls the server. It is safe for concurrent use.
type Client struct {
	baseURL  string
	timeout  time.Duration
	auth     leadifyv1connect.AuthServiceClient
	accounts leadifyv1connect.AccountsServiceClient
}

// New returns a client for cfg. The base URL must be an absolute http or https
// URL (see NormalizeURL); New does not contact the server.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server address %q is not an http:// or https:// address", cfg.BaseURL)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: min(timeout, 5*time.Second)}).DialContext
	httpClient := &http.Client{Transport: transport}
	opts := []connect.ClientOption{connect.WithInterceptors(bearer(cfg.Token))}
	base := strings.TrimRight(cfg.BaseURL, "/")
	return &Client{
		baseURL:  base,
		timeout:  timeout,
		auth:     leadifyv1connect.NewAuthServiceClient(httpClient, base, opts...),
		accounts: leadifyv1connect.NewAccountsServiceClient(httpClient, base, opts...),
	}, nil
}

// BaseURL returns the server address this client talks to, without a trailing slash.
func (c *Client) BaseURL() string { return c.baseURL }

// NormalizeURL tidies an address typed by a person: it trims spaces and trailing
// slashes and, when no scheme is given, assumes http for local addresses
// (localhost, 127.0.0.1, …) and https for everything else. It returns an error
// for anything that is still not an http(s) URL with a host.
func NormalizeURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errors.New("enter the server address")
	}
	if !strings.Contains(s, "://") {
		scheme := "https://"
		if host, _, _ := strings.Cut(s, "/"); isLocal(host) {
			scheme = "http://"
		}
		s = scheme + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return "", fmt.Errorf("%q is not a valid server address", strings.TrimSpace(raw))
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

func isLocal(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate())
}

// Login exchanges an email and password for a session. deviceName labels the
// session on the server. Fails with ErrWrongCredentials, ErrTooManyAttempts or
// ErrUnreachable among others.
func (c *Client) Login(ctx context.Context, email, password, deviceName string) (*leadifyv1.LoginResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.auth.Login(ctx, connect.NewRequest(&leadifyv1.LoginRequest{
		Email: email, Password: password, DeviceName: deviceName,
	}))
	if err != nil {
		return nil, classify(err, opLogin)
	}
	return res.Msg, nil
}

// Me returns the signed-in user and their memberships. Fails with
// ErrSessionExpired when the token is no longer valid.
func (c *Client) Me(ctx context.Context) (*leadifyv1.MeResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.auth.Me(ctx, connect.NewRequest(&leadifyv1.MeRequest{}))
	if err != nil {
		return nil, classify(err, opSession)
	}
	return res.Msg, nil
}

// Logout revokes the session token on the server.
func (c *Client) Logout(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if _, err := c.auth.Logout(ctx, connect.NewRequest(&leadifyv1.LogoutRequest{})); err != nil {
		return classify(err, opSession)
	}
	return nil
}

// ListStores returns the stores the signed-in user is a member of (all stores
// for platform admins).
func (c *Client) ListStores(ctx context.Context) ([]*leadifyv1.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.accounts.ListStores(ctx, connect.NewRequest(&leadifyv1.ListStoresRequest{}))
	if err != nil {
		return nil, classify(err, opSession)
	}
	return res.Msg.GetStores(), nil
}

// bearer adds the session token to every request (nothing when token is empty).
// Only unary calls exist today; streaming calls will need the same header.
func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if token != "" && req.Spec().IsClient {
				req.Header().Set("Authorization", "Bearer "+token)
			}
			return next(ctx, req)
		}
	}
}
