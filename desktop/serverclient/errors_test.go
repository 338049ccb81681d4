package serverclient

import (
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 42, 0, 0, time.UTC)
	withHeader := connect.NewError(connect.CodeResourceExhausted, errors.New("slow down"))
	withHeader.Meta().Set("Retry-After", "90")
	for _, tc := range []struct {
		err  error
		want time.Duration
	}{
		{withHeader, 90 * time.Second},
		{connect.NewError(connect.CodeResourceExhausted,
			errors.New("too many failed sign-ins; try again after 2026-05-01T10:57:00Z")), 15 * time.Minute},
		{connect.NewError(connect.CodeResourceExhausted,
			errors.New("try again after 2026-05-01T10:00:00Z")), 0}, // already past
		{connect.NewError(connect.CodeResourceExhausted, errors.New("too many requests")), 0},
		{errors.New("not a connect error"), 0},
	} {
		require.Equal(t, tc.want, retryAfter(tc.err, now), tc.err.Error())
	}
}

func TestMinutes(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0:                "a few minutes",
		30 * time.Second: "1 minute",
		time.Minute:      "1 minute",
		61 * time.Second: "2 minutes",
		15 * time.Minute: "15 minutes",
	} {
		require.Equal(t, want, minutes(d), d.String())
	}
}
