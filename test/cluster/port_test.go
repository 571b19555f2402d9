package cluster

import "testing"

func TestFreePortBelowEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for range 50 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if port < freePortFloor || port >= low {
			t.Fatalf("FreePort = %d, want one in [%d, %d)", port, freePortFloor, low)
		}
		seen[port] = true
	}
	if len(seen) < 40 {
		t.Errorf("50 ports, only %d different: not random enough to keep parallel tests apart", len(seen))
	}
}
