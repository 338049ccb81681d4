package invoiceseal_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/invoiceseal"
)

func sample() invoiceseal.Seal {
	return invoiceseal.Seal{Store: uuid.New(), Invoice: uuid.New(), Number: 42,
		PeriodStart: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
		IssuedAt: time.Date(2026, 4, 2, 9, 30, 0, 0, time.UTC), COD: 1_234_56, DeliveryFees: 35_00, CODFees: 5_00,
		ReturnFees: 15_00, PlatformFees: 37_03, VATRateBP: 2000, VAT: 7_41, Net: 1_134_12, Lines: 60, Digest: [32]byte{1, 2, 3}}
}

func TestSealRoundTripAndTamper(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	keys := invoiceseal.Keys{"k1": pub}
	pdf := []byte("%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n")
	s := sample()
	sealed, err := invoiceseal.Append(pdf, s, "k1", priv)
	require.NoError(t, err)
	got, err := keys.Verify(sealed)
	require.NoError(t, err)
	s.KeyID, s.PDF, s.Signature = got.KeyID, got.PDF, got.Signature
	require.Equal(t, s, got)
	require.Equal(t, "k1", got.KeyID)

	// Any changed byte of the PDF fails.
	for _, i := range []int{0, 10, len(pdf) - 2} {
		bad := append([]byte(nil), sealed...)
		bad[i] ^= 0x20
		_, err := keys.Verify(bad)
		require.ErrorIs(t, err, invoiceseal.ErrBadSeal, "byte %d", i)
	}
	// So does a seal over other figures, an unknown key, or no seal at all.
	other := sample()
	other.Net++
	forged, err := invoiceseal.Append(pdf, other, "k1", priv)
	require.NoError(t, err)
	_, forgedSeal, err := invoiceseal.Split(forged)
	require.NoError(t, err)
	swapped := append(append([]byte(nil), pdf...), forged[len(pdf):]...)
	_, err = keys.Verify(swapped) // a valid seal, but of other figures
	require.NoError(t, err)
	require.NotEqual(t, got.Net, forgedSeal.Net, "callers compare the sealed figures with the row")
	_, otherPriv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	foreign, err := invoiceseal.Append(pdf, s, "k1", otherPriv)
	require.NoError(t, err)
	_, err = keys.Verify(foreign)
	require.ErrorIs(t, err, invoiceseal.ErrBadSeal)
	_, err = invoiceseal.Keys{}.Verify(sealed)
	require.ErrorIs(t, err, invoiceseal.ErrBadSeal)
	_, err = keys.Verify(pdf)
	require.ErrorIs(t, err, invoiceseal.ErrNoSeal)
	_, err = invoiceseal.Append(pdf, s, "bad key", priv)
	require.ErrorIs(t, err, invoiceseal.ErrMalformed)
}

// FuzzSplit: reading a seal from arbitrary bytes never panics, and whatever
// it accepts writes back to the same seal line.
func FuzzSplit(f *testing.F) {
	_, priv, err := ed25519.GenerateKey(nil)
	require.NoError(f, err)
	sealed, err := invoiceseal.Append([]byte("%PDF-1.4\n%%EOF\n"), sample(), "k1", priv)
	require.NoError(f, err)
	f.Add(sealed)
	f.Add([]byte("%PDF-1.4\n%%EOF\n\n%LEADIFY-SEAL abc def\n"))
	f.Add([]byte("\n%LEADIFY-SEAL \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pdf, s, err := invoiceseal.Split(data)
		if err != nil {
			return
		}
		resealed := string(data[len(pdf):])
		require.Contains(t, resealed, string(encode(s.Message())))
	})
}

func encode(b []byte) []byte { return []byte(base64.RawURLEncoding.EncodeToString(b)) }
