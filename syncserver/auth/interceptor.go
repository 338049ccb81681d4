package auth

import (
	"context"
	"errors"
	"strings"

	"connectrpc.com/connect"
)

// Interceptor authenticates every RPC except the named public procedures and
// puts the Actor in the handler's context.
type Interceptor struct {
	svc    *Service
	public map[string]bool
}

var _ connect.Interceptor = (*Interceptor)(nil)

// NewInterceptor returns an interceptor that lets the given procedures
// ("/leadify.v1.AuthService/Login", …) through without a session.
func NewInterceptor(svc *Service, publicProcedures ...string) *Interceptor {
	pub := map[string]bool{}
	for _, p := range publicProcedures {
		pub[p] = true
	}
	return &Interceptor{svc: svc, public: pub}
}

func (i *Interceptor) authenticate(ctx context.Context, procedure string, h interface{ Get(string) string }) (context.Context, error) {
	if i.public[procedure] {
		return ctx, nil
	}
	token, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("missing bearer token"))
	}
	actor, err := i.svc.Authenticate(ctx, strings.TrimSpace(token))
	if errors.Is(err, ErrUnauthenticated) {
		return nil, connect.NewError(connect.CodeUnauthenticated, err)
	}
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("cannot check the session right now"))
	}
	return WithActor(ctx, actor), nil
}

// WrapUnary implements connect.Interceptor.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := i.authenticate(ctx, req.Spec().Procedure, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.authenticate(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
