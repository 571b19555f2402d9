// Package translations decides how quartet's embedded kubectl loads its
// message catalogs, and is imported for that effect alone.
//
// kubectl translates its help texts while its packages are initialised (at
// the first i18n.T), and loading a catalog parses both of its files: about
// 4 MB of allocations and 10-20 ms of every `quartet kubectl` start, whatever
// the command. kubectl's English catalogs ("default", used for every locale
// it has no catalog for, and "en_US") translate each message to itself, so
// under such a locale nothing is loaded and kubectl prints the same text;
// under a locale kubectl has a catalog for, it is loaded as kubectl does.
//
// The loader has to be in place before the first i18n.T. Go initialises
// packages in dependency order, the first ready one by import path first;
// this package needs only kubectl's i18n package, while kubectl's command
// packages wait for sigs.k8s.io packages that sort after quartet.dev, so
// this one runs before them. Installed says whether it did, and the e2e test
// TestKubectlTranslations checks it on the real binary.
package translations

import (
	"os"
	"slices"
	"strings"

	"k8s.io/kubectl/pkg/util/i18n"
)

// Installed is true when quartet's loader replaced kubectl's before any
// message was translated.
var Installed = i18n.SetLoadTranslationsFunc(load) == nil

// catalogs are the languages kubectl has a translation for (its
// translations/kubectl directory, apart from default and en_US).
var catalogs = []string{"de_DE", "fr_FR", "it_IT", "ja_JP", "ko_KR", "pt_BR", "zh_CN", "zh_TW"}

func load() error {
	if !translated(language(os.Getenv)) {
		return nil
	}
	return i18n.LoadTranslations("kubectl", nil)
}

// language is the locale's language as kubectl reads it: LC_ALL, else
// LC_MESSAGES, else LANG, in the form lang.encoding ("" otherwise).
func language(getenv func(string) string) string {
	s := getenv("LC_ALL")
	if s == "" {
		s = getenv("LC_MESSAGES")
	}
	if s == "" {
		s = getenv("LANG")
	}
	pieces := strings.Split(s, ".")
	if len(pieces) != 2 {
		return ""
	}
	return pieces[0]
}

func translated(lang string) bool { return slices.Contains(catalogs, lang) }
