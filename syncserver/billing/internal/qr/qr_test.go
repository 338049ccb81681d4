package qr

import (
	"fmt"
	"math/rand/v2"
	"testing"

	upstream "github.com/boombuler/barcode/qr"
)

// TestSameCodesAsUpstream: the faster mask evaluation picks the masks
// upstream picks, so codes are module for module the same, for verification
// URLs of every length an invoice's can have and for random text.
func TestSameCodesAsUpstream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~/:?=&%"
	var contents []string
	for n := 1; n <= 400; n += 7 + n/3 {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		contents = append(contents, string(b), fmt.Sprintf("https://app.leadify.ma/v/%s", b))
	}
	for _, c := range contents {
		for _, level := range []ErrorCorrectionLevel{L, M, Q, H} {
			got, err := Encode(c, level, Auto)
			if err != nil {
				t.Fatalf("%q: %v", c, err)
			}
			want, err := upstream.Encode(c, upstream.ErrorCorrectionLevel(level), upstream.Auto)
			if err != nil {
				t.Fatalf("upstream %q: %v", c, err)
			}
			if got.Bounds() != want.Bounds() {
				t.Fatalf("%q level %v: bounds %v, upstream %v", c, level, got.Bounds(), want.Bounds())
			}
			b := got.Bounds()
			for x := b.Min.X; x < b.Max.X; x++ {
				for y := b.Min.Y; y < b.Max.Y; y++ {
					if got.At(x, y) != want.At(x, y) {
						t.Fatalf("%q level %v: module (%d, %d) differs from upstream's", c, level, x, y)
					}
				}
			}
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	url := "https://app.leadify.ma/invoices/verify?c=" + fmt.Sprintf("%0180d", 7)
	for b.Loop() {
		if _, err := Encode(url, M, Auto); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeUpstream(b *testing.B) {
	url := "https://app.leadify.ma/invoices/verify?c=" + fmt.Sprintf("%0180d", 7)
	for b.Loop() {
		if _, err := upstream.Encode(url, upstream.M, upstream.Auto); err != nil {
			b.Fatal(err)
		}
	}
}
