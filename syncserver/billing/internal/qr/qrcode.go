package qr

import (
	"image"
	"image/color"
	"math"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/utils"
)

type qrcode struct {
	dimension int
	data      *utils.BitList
	content   string
	color     barcode.ColorScheme
}

func (qr *qrcode) Content() string {
	return qr.content
}

func (qr *qrcode) Metadata() barcode.Metadata {
	return barcode.Metadata{CodeKind: barcode.TypeQR, Dimensions: 2}
}

func (qr *qrcode) ColorModel() color.Model {
	return qr.color.Model
}

func (c *qrcode) ColorScheme() barcode.ColorScheme {
	return c.color
}

func (qr *qrcode) Bounds() image.Rectangle {
	return image.Rect(0, 0, qr.dimension, qr.dimension)
}

func (qr *qrcode) At(x, y int) color.Color {
	if qr.Get(x, y) {
		return qr.color.Foreground
	}
	return qr.color.Background
}

func (qr *qrcode) Get(x, y int) bool {
	return qr.data.GetBit(x*qr.dimension + y)
}

func (qr *qrcode) Set(x, y int, val bool) {
	qr.data.SetBit(x*qr.dimension+y, val)
}

// calcPenalty scores the code as the specification's mask evaluation does
// (and upstream did, module by module through the bit list): rule 1, runs of
// five or more equal modules; rule 2, 2×2 blocks of one colour; rule 3,
// finder-like 1:1:3:1:1 patterns with four light modules on one side; rule 4,
// the balance of dark and light. Leadify: the same scores, from one copy of
// the modules in a flat slice and 11-module windows kept in a shift register,
// at a fraction of the cost (the mask choice was most of an invoice PDF's CPU).
func (qr *qrcode) calcPenalty() uint {
	n := qr.dimension
	m := make([]bool, n*n) // m[x*n+y] = Get(x, y)
	dark := 0
	for i := range m {
		if qr.data.GetBit(i) {
			m[i] = true
			dark++
		}
	}
	return penaltyRule1(m, n) + penaltyRule2(m, n) + penaltyRule3(m, n) + penaltyRule4(dark, len(m))
}

// penaltyRule1: each run of k ≥ 5 equal modules in a row or column scores k−2.
func penaltyRule1(m []bool, n int) uint {
	var result uint
	for a := 0; a < n; a++ {
		for _, stride := range [2]int{1, n} { // along Get(a, ·), then along Get(·, a)
			start := a * n
			if stride == n {
				start = a
			}
			var run uint
			prev := false
			for b := 0; b < n; b++ {
				v := m[start+b*stride]
				if b > 0 && v == prev {
					run++
					continue
				}
				if run >= 5 {
					result += run - 2
				}
				run, prev = 1, v
			}
			if run >= 5 {
				result += run - 2
			}
		}
	}
	return result
}

// penaltyRule2: each 2×2 block of one colour scores 3.
func penaltyRule2(m []bool, n int) uint {
	var result uint
	for x := 0; x < n-1; x++ {
		r0, r1 := m[x*n:(x+1)*n], m[(x+1)*n:(x+2)*n]
		for y := 0; y < n-1; y++ {
			c := r0[y]
			if r0[y+1] == c && r1[y] == c && r1[y+1] == c {
				result += 3
			}
		}
	}
	return result
}

// The two 11-module patterns of rule 3, first module in the highest bit.
const (
	rule3Pattern1 = 0b10111010000
	rule3Pattern2 = 0b00001011101
	rule3Mask     = 1<<11 - 1
)

// penaltyRule3: each window of 11 modules in a row or column that matches
// either pattern scores 40.
func penaltyRule3(m []bool, n int) uint {
	var result uint
	for a := 0; a < n; a++ {
		for _, stride := range [2]int{n, 1} {
			start := a
			if stride == 1 {
				start = a * n
			}
			w := 0
			for b := 0; b < n; b++ {
				w <<= 1
				if m[start+b*stride] {
					w |= 1
				}
				w &= rule3Mask
				if b >= 10 && (w == rule3Pattern1 || w == rule3Pattern2) {
					result += 40
				}
			}
		}
	}
	return result
}

// penaltyRule4: 10 for every 5 % the dark share is away from 50 %.
func penaltyRule4(dark, total int) uint {
	percDark := float64(dark) * 100 / float64(total)
	floor := math.Abs(math.Floor(percDark/5) - 10)
	ceil := math.Abs(math.Ceil(percDark/5) - 10)
	return uint(math.Min(floor, ceil) * 10)
}

func newBarCodeWithColor(dim int, color barcode.ColorScheme) *qrcode {
	res := new(qrcode)
	res.dimension = dim
	res.data = utils.NewBitList(dim * dim)
	res.color = color
	return res
}
