package auth

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
)

// Params are argon2id's costs: OWASP's second recommended configuration
// (19 MiB, 2 passes, 1 lane), cheap enough for 2-core servers under throttled logins.
var Params = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// ErrWeakPassword is returned for passwords that are too short or too long.
var ErrWeakPassword = errors.New("password must be 10 to 200 characters")

// HashPassword returns an argon2id PHC string. Returns ErrWeakPassword for
// passwords under 10 or over 200 characters.
func HashPassword(pw string) (string, error) {
	if n := utf8.RuneCountInString(pw); n < 10 || n > 200 {
		return "", ErrWeakPassword
	}
	h, err := argon2id.CreateHash(pw, Params)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// CheckPassword reports whether pw matches the hash. A malformed hash is an error.
func CheckPassword(pw, hash string) (bool, error) {
	if len(pw) > 1024 {
		return false, nil
	}
	return argon2id.ComparePasswordAndHash(pw, hash)
}

// dummyHash is checked against when the account does not exist, so that an
// unknown email costs as long as a wrong password.
var dummyHash = func() string {
	h, err := argon2id.CreateHash("leadify-dummy-password", Params)
	if err != nil {
		panic(err)
	}
	return h
}()
