package cookie_test

import (
	"fmt"

	"github.com/flagkit/experiment/pkg/cookie"
)

func ExampleParseAuto() {
	header := "_ga=GA1.2.3; AMP_0123456789=JTdCJTIyZGV2aWNlSWQlMjIlM0ElMjJzb21lRGV2aWNlSWQlMjIlN0Q="
	id, f, err := cookie.ParseAuto(header)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f, id.DeviceID)
	// Output: new-format someDeviceId
}

func ExampleGenerate() {
	v, _ := cookie.Generate("someDeviceId", cookie.BrowserSDK2)
	name, _ := cookie.Name("0123456789abcdef", cookie.BrowserSDK2)
	fmt.Println(name + "=" + v)
	// Output: AMP_0123456789=JTdCJTIyZGV2aWNlSWQlMjIlM0ElMjAlMjJzb21lRGV2aWNlSWQlMjIlN0Q=
}

// A visitor without the cookie gets a fresh device id: evaluate with it and
// set the cookie, so the browser SDK adopts the same id. (The id is random,
// so this example only shows its shape.)
func ExampleNewDeviceID() {
	deviceID := cookie.NewDeviceID()
	value, err := cookie.Generate(deviceID, cookie.BrowserSDK2)
	if err != nil {
		fmt.Println(err)
		return
	}
	name, _ := cookie.Name("0123456789abcdef", cookie.BrowserSDK2)
	id, _ := cookie.Parse(value, cookie.BrowserSDK2)
	fmt.Println(name, len(deviceID), id.DeviceID == deviceID)
	// Output: AMP_0123456789 36 true
}
