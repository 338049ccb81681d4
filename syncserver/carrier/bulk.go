package carrier

import (
	"context"
	"sync"
)

// Result is the outcome of one parcel of a bulk creation.
type Result struct {
	Created Created
	Err     error
}

// CreateBulk creates parcels at c with at most concurrency calls in flight
// (at least 1) and returns one result per parcel, in order. A failed parcel
// does not stop the others; a cancelled ctx fails the parcels not yet sent.
func CreateBulk(ctx context.Context, c Carrier, parcels []Parcel, concurrency int) []Result {
	concurrency = max(concurrency, 1)
	results := make([]Result, len(parcels))
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i, p := range parcels {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results[i].Err = ctx.Err()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i].Created, results[i].Err = c.Create(ctx, p)
		})
	}
	wg.Wait()
	return results
}
