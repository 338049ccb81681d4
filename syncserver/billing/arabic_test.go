package billing

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"
)

func TestShapeArabic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []rune
	}{
		// ب initial, ا final (alef does not join the next letter), ب isolated.
		{"باب", []rune{0xFE91, 0xFE8E, 0xFE8F}},
		// م initial, ح medial, م medial, د final.
		{"محمد", []rune{0xFEE3, 0xFEA4, 0xFEE4, 0xFEAA}},
		// Lam-alef ligature, isolated then final.
		{"لا", []rune{0xFEFB}},
		{"سلام", []rune{0xFEB3, 0xFEFC, 0xFEE1}},
		// Latin is untouched.
		{"TVA 20", []rune("TVA 20")},
	}
	for _, tt := range tests {
		require.Equal(t, string(tt.want), string(shapeArabic(tt.in)), tt.in)
		// NFKC takes presentation forms back to the letters.
		require.Equal(t, norm.NFKC.String(tt.in), norm.NFKC.String(string(shapeArabic(tt.in))))
	}
}

func TestVisual(t *testing.T) {
	t.Parallel()
	require.Equal(t, "Facture 12", Visual("Facture 12"))
	// Letters reversed, the number kept left to right, runs reordered.
	got := []rune(norm.NFKC.String(Visual("الضريبة 20 %")))
	require.Equal(t, "% 20 ةبيرضلا", string(got))
	require.Equal(t, "(ةروتاف)", norm.NFKC.String(Visual("(فاتورة)")))
}
