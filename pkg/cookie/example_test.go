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
