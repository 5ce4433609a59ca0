package story

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		wantErr bool
		check   func(t *testing.T, s Snapshot)
	}{
		{"seed shape", `{"characters":[{"name":"John","description":"A detective","relationships":["Partner with Sarah"],"character_arc":"Learns to trust"}],"themes":["Justice"],"locations":["Los Angeles"],"plot_points":["John meets a client"]}`, false,
			func(t *testing.T, s Snapshot) {
				if len(s.Characters) != 1 || s.Characters[0].Name != "John" || s.Themes[0] != "Justice" || s.Scenes == nil {
					t.Fatalf("%+v", s)
				}
			}},
		{"empty object", `{}`, false, func(t *testing.T, s Snapshot) {
			if s.Characters == nil || s.Themes == nil || s.Locations == nil || s.PlotPoints == nil {
				t.Fatalf("lists not initialised: %+v", s)
			}
		}},
		{"blank entries dropped", `{"themes":[" ","Duty"],"characters":[{"name":" "}]}`, false, func(t *testing.T, s Snapshot) {
			if len(s.Themes) != 1 || len(s.Characters) != 0 {
				t.Fatalf("%+v", s)
			}
		}},
		{"unknown field", `{"villains":[]}`, true, nil},
		{"wrong type", `{"themes":"Justice"}`, true, nil},
		{"not an object", `[1,2]`, true, nil},
		{"trailing data", `{}{}`, true, nil},
		{"too many items", `{"themes":[` + strings.Repeat(`"t",`, MaxItems) + `"t"]}`, true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.in))
			if tc.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}
