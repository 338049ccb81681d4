package parcels

import (
	"net/http"
	"time"
)

func carrierHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout}
}
