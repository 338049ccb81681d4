package syncsim_test

import (
	"os"
	"testing"

	"github.com/alexedwards/argon2id"

	"github.com/leadify/leadify/syncserver/auth"
)

// TestMain makes password hashing cheap for this package's tests: the
// simulation removes and re-invites members thousands of times, and each
// rejoin checks a password; what it tests is sync, not key stretching.
// (Benchmarks here run their server as its own process, with the real costs.)
func TestMain(m *testing.M) {
	auth.Params = &argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	os.Exit(m.Run())
}
