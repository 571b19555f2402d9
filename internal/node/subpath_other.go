//go:build !linux

package node

import (
	"errors"
	"os"
)

func openSubPath(string, string) (*os.File, error) {
	return nil, errors.New("subPath needs Linux")
}

func stageSubPath(*os.File, string) (func(), error) {
	return nil, errors.New("subPath needs Linux")
}

func unmountUnder(string) int { return 0 }
