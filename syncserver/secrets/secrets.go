// Package secrets encrypts the credentials Leadify stores — carrier, sheet, shop
// and AI keys — with AES-256-GCM under keys from configuration. A Keyring holds
// one active key, used to seal, and any number of older keys, still used to open,
// so keys rotate without downtime: add a new key in front, run
// `leadify-server rotate-secrets`, then drop the old key.
//
// A sealed value is text: "v1:<key id>:<base64url(nonce || ciphertext)>". The
// caller passes associated data (for example the row id and column), so a
// ciphertext copied to another row does not open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownKey is returned when a value was sealed under a key not in the ring.
var ErrUnknownKey = errors.New("secrets: sealed under a key that is not configured")

// ErrCorrupt is returned when a value is malformed, tampered with, or opened
// with the wrong associated data.
var ErrCorrupt = errors.New("secrets: value is corrupt or does not belong here")

// Keyring seals with its first key and opens with any of them.
type Keyring struct {
	ids   []string
	aeads map[string]cipher.AEAD
}

// ParseKeyring reads "id1:base64key1,id2:base64key2", active key first. Keys are
// 32 random bytes in standard or URL base64 (`openssl rand -base64 32`).
// Returns an error for an empty spec, a duplicate id or a key of the wrong size.
func ParseKeyring(spec string) (*Keyring, error) {
	kr := &Keyring{aeads: map[string]cipher.AEAD{}}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, ok := strings.Cut(part, ":")
		if !ok || id == "" || strings.ContainsAny(id, ": ") {
			return nil, fmt.Errorf("secrets: key %q: want id:base64key", redact(part))
		}
		key, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %q: %w", id, err)
		}
		if _, dup := kr.aeads[id]; dup {
			return nil, fmt.Errorf("secrets: key id %q appears twice", id)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %q: %w", id, err)
		}
		kr.ids = append(kr.ids, id)
		kr.aeads[id] = aead
	}
	if len(kr.ids) == 0 {
		return nil, errors.New("secrets: no key configured (set LEADIFY_SECRET_KEYS)")
	}
	return kr, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != 32 {
				return nil, fmt.Errorf("key is %d bytes, want 32", len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("key is not base64")
}

func redact(s string) string {
	if id, _, ok := strings.Cut(s, ":"); ok {
		return id + ":…"
	}
	return "…"
}

// ActiveKeyID is the id of the key new values are sealed under.
func (k *Keyring) ActiveKeyID() string { return k.ids[0] }

// Seal encrypts plaintext under the active key, bound to associated data ad.
func (k *Keyring) Seal(plaintext, ad []byte) (string, error) {
	id := k.ids[0]
	aead := k.aeads[id]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secrets: nonce: %w", err)
	}
	sealed := aead.Seal(nonce, nonce, plaintext, ad)
	return "v1:" + id + ":" + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Open decrypts a sealed value. Returns ErrUnknownKey or ErrCorrupt.
func (k *Keyring) Open(sealed string, ad []byte) ([]byte, error) {
	id, payload, err := split(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w (key %q)", ErrUnknownKey, id)
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrCorrupt
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], ad)
	if err != nil {
		return nil, ErrCorrupt
	}
	return plain, nil
}

// NeedsRotation reports whether a sealed value is under a key other than the
// active one.
func (k *Keyring) NeedsRotation(sealed string) bool {
	id, _, err := split(sealed)
	return err != nil || id != k.ids[0]
}

// Rotate re-seals a value under the active key. Values already under it are
// returned unchanged.
func (k *Keyring) Rotate(sealed string, ad []byte) (string, error) {
	if !k.NeedsRotation(sealed) {
		return sealed, nil
	}
	plain, err := k.Open(sealed, ad)
	if err != nil {
		return "", err
	}
	return k.Seal(plain, ad)
}

func split(sealed string) (id, payload string, err error) {
	rest, ok := strings.CutPrefix(sealed, "v1:")
	if !ok {
		return "", "", ErrCorrupt
	}
	id, payload, ok = strings.Cut(rest, ":")
	if !ok || id == "" {
		return "", "", ErrCorrupt
	}
	return id, payload, nil
}

// GenerateKey returns a new random key in the form ParseKeyring reads.
func GenerateKey(id string) string {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return id + ":" + base64.StdEncoding.EncodeToString(k)
}
