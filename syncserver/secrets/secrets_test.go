package secrets

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSealOpenAndRotate(t *testing.T) {
	t.Parallel()
	oldKey, newKey := GenerateKey("k1"), GenerateKey("k2")
	oldRing, err := ParseKeyring(oldKey)
	require.NoError(t, err)
	ad := []byte("carrier_accounts:123:credentials")

	sealed, err := oldRing.Seal([]byte(`{"token":"s3cret"}`), ad)
	require.NoError(t, err)
	require.NotContains(t, sealed, "s3cret")
	require.True(t, strings.HasPrefix(sealed, "v1:k1:"))

	again, err := oldRing.Seal([]byte(`{"token":"s3cret"}`), ad)
	require.NoError(t, err)
	require.NotEqual(t, sealed, again, "every seal uses a fresh nonce")

	rotated, err := ParseKeyring(newKey + "," + oldKey)
	require.NoError(t, err)
	require.True(t, rotated.NeedsRotation(sealed))
	plain, err := rotated.Open(sealed, ad)
	require.NoError(t, err, "old values open during rotation")
	require.Equal(t, `{"token":"s3cret"}`, string(plain))

	resealed, err := rotated.Rotate(sealed, ad)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(resealed, "v1:k2:"))
	require.False(t, rotated.NeedsRotation(resealed))

	newOnly, err := ParseKeyring(newKey)
	require.NoError(t, err)
	_, err = newOnly.Open(sealed, ad)
	require.ErrorIs(t, err, ErrUnknownKey)
	plain, err = newOnly.Open(resealed, ad)
	require.NoError(t, err)
	require.Equal(t, `{"token":"s3cret"}`, string(plain))
}

func TestOpenRefusesTamperingAndMisplacedValues(t *testing.T) {
	t.Parallel()
	kr, err := ParseKeyring(GenerateKey("k1"))
	require.NoError(t, err)
	sealed, err := kr.Seal([]byte("secret"), []byte("row-1"))
	require.NoError(t, err)

	_, err = kr.Open(sealed, []byte("row-2"))
	require.ErrorIs(t, err, ErrCorrupt, "a value copied to another row does not open")

	b := []byte(sealed)
	b[len(b)-2] ^= 1
	_, err = kr.Open(string(b), []byte("row-1"))
	require.ErrorIs(t, err, ErrCorrupt)

	for _, bad := range []string{"", "plain", "v1:", "v1:k1:", "v1:k1:!!!", "v2:k1:abc"} {
		_, err := kr.Open(bad, nil)
		require.Error(t, err, bad)
	}
}

func TestParseKeyringErrors(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"", "nokey", "k1:notbase64!!", "k1:c2hvcnQ=", GenerateKey("a") + "," + GenerateKey("a")} {
		_, err := ParseKeyring(spec)
		require.Error(t, err, spec)
		require.NotContains(t, err.Error(), "c2hvcnQ", "errors never echo key material")
	}
}

func FuzzOpen(f *testing.F) {
	kr, err := ParseKeyring("k1:" + strings.Repeat("A", 43) + "=")
	if err != nil {
		f.Fatal(err)
	}
	good, _ := kr.Seal([]byte("hello"), nil)
	for _, s := range []string{good, "", "v1:k1:", "v1:k1:AAAA", "v1::x", "v1:k9:" + good[6:]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		plain, err := kr.Open(s, nil)
		if err == nil && s != good && string(plain) != "hello" {
			t.Fatalf("opened forged value %q to %q", s, plain)
		}
	})
}
