// Package api holds Leadify's Connect handlers: thin adapters between the
// generated service interfaces and the capabilities behind them. Domain errors
// become Connect codes in one place, toConnect; internal failures are logged
// and answered with a plain "internal error", never a stack trace or SQL.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/events"

	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/postgres"
)

// invalid marks an error as the caller's bad input.
type invalid struct{ msg string }

func (e *invalid) Error() string { return e.msg }

func invalidf(format string, args ...any) error { return &invalid{msg: fmt.Sprintf(format, args...)} }

// failed marks a request that is well-formed but not possible in the current state.
type failed struct{ msg string }

func (e *failed) Error() string { return e.msg }

func failedf(format string, args ...any) error { return &failed{msg: fmt.Sprintf(format, args...)} }

func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	var inv *invalid
	var fp *failed
	var thr *auth.ThrottledError
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.As(err, &inv):
		return connect.NewError(connect.CodeInvalidArgument, inv)
	case errors.As(err, &fp):
		return connect.NewError(connect.CodeFailedPrecondition, fp)
	case errors.As(err, &thr):
		ce := connect.NewError(connect.CodeResourceExhausted, thr)
		ce.Meta().Set("Retry-After", strconv.Itoa(max(1, int(time.Until(thr.Until).Seconds()+0.5))))
		return ce
	case errors.Is(err, auth.ErrBadCredentials), errors.Is(err, auth.ErrUnauthenticated):
		return connect.NewError(connect.CodeUnauthenticated, err)
	case errors.Is(err, auth.ErrWeakPassword):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, auth.ErrNoStore), errors.Is(err, postgres.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("not found"))
	case errors.Is(err, auth.ErrForbidden):
		return connect.NewError(connect.CodePermissionDenied, err)
	case errors.Is(err, postgres.ErrConflict):
		return connect.NewError(connect.CodeAlreadyExists, errors.New("already exists"))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("request cancelled"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("request timed out"))
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}

func actorOf(ctx context.Context) (*auth.Actor, error) {
	a := auth.ActorFrom(ctx)
	if a == nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("not signed in"))
	}
	return a, nil
}

// NewAuthHandler returns the AuthService implementation.
func NewAuthHandler(pool *pgxpool.Pool, svc *auth.Service, log *slog.Logger) leadifyv1connect.AuthServiceHandler {
	return &authHandler{pool: pool, auth: svc, log: log}
}

// NewAccountsHandler returns the AccountsService implementation.
func NewAccountsHandler(pool *pgxpool.Pool, bus *events.Bus, log *slog.Logger) leadifyv1connect.AccountsServiceHandler {
	return &accountsHandler{pool: pool, events: bus, log: log}
}
