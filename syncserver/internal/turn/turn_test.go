package turn

import (
	"sync"
	"testing"

	"github.com/google/uuid"
)

func TestTurns(t *testing.T) {
	var ts Turns
	a, b := uuid.New(), uuid.New()
	if !ts.Take(a) || !ts.Take(b) {
		t.Fatal("a free store's turn was not given")
	}
	if !ts.Leave(b, false) {
		t.Fatal("a turn nobody asked about did not end")
	}
	if ts.Take(a) {
		t.Fatal("a held turn was given twice")
	}
	if ts.Leave(a, false) {
		t.Fatal("the holder stopped although a job asked it to look again")
	}
	if !ts.Leave(a, false) {
		t.Fatal("the request to look again was not taken by the first Leave")
	}
	if !ts.Take(a) || ts.Take(a) || !ts.Leave(a, true) {
		t.Fatal("force did not end a turn with a request pending")
	}
	if !ts.Take(a) {
		t.Fatal("an ended turn was not given again")
	}
}

// Whatever the interleaving, a job that is refused the turn is never left
// behind: the holder looks again after it (or it gets the turn itself).
func TestTurnsNoLostRequest(t *testing.T) {
	var ts Turns
	store := uuid.New()
	var mu sync.Mutex
	pending, worked := 0, 0
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			pending++
			mu.Unlock()
			if !ts.Take(store) {
				return
			}
			for {
				mu.Lock()
				worked += pending
				pending = 0
				mu.Unlock()
				if ts.Leave(store, false) {
					return
				}
			}
		}()
	}
	wg.Wait()
	if pending != 0 || worked != 64 {
		t.Fatalf("pending %d, worked %d of 64", pending, worked)
	}
}
