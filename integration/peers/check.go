package peers

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Check asks baseURL for the page, first one request at a time, then
// concurrently, and fails unless every answer is 200 with exactly want as
// its body and the handler built the page as often as sys says (once for a
// cache, once per request for a static handler). It returns the number of
// page requests it made.
func Check(client *http.Client, baseURL string, sys System, want []byte) (int, error) {
	const sequential, concurrent = 3, 32
	get := func() error {
		resp, err := client.Get(baseURL + PagePath)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
			return fmt.Errorf("GET %s: status %d, %d bytes (equal: %t); want 200 and the %d-byte page",
				PagePath, resp.StatusCode, len(got), bytes.Equal(got, want), len(want))
		}
		return nil
	}
	for range sequential {
		if err := get(); err != nil {
			return 0, fmt.Errorf("%s: %w", sys.Key, err)
		}
	}
	errs := make(chan error, concurrent)
	var wg sync.WaitGroup
	for range concurrent {
		wg.Go(func() { errs <- get() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, fmt.Errorf("%s: %w", sys.Key, err)
		}
	}
	n := sequential + concurrent
	runs, err := Runs(client, baseURL)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", sys.Key, err)
	}
	if want := sys.Builds(n); runs != want {
		return 0, fmt.Errorf("%s: the handler built the page %d times for %d requests; want %d", sys.Key, runs, n, want)
	}
	return n, nil
}

// Runs asks a system how many times its handler has built the page.
func Runs(client *http.Client, baseURL string) (int, error) {
	resp, err := client.Get(baseURL + RunsPath)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: status %d", RunsPath, resp.StatusCode)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
