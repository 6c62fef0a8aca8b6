// Package openfeature is an OpenFeature provider
// (github.com/open-feature/go-sdk) for Amplitude Experiment flags evaluated
// locally by github.com/flagkit/experiment/pkg/experiment. It is a module
// of its own so that the SDK does not depend on the OpenFeature SDK.
//
//	provider, err := openfeature.New(deploymentKey, &experiment.LocalConfig{StreamUpdates: true}, nil)
//	if err != nil { ... }
//	if err := of.SetProviderAndWait(provider); err != nil { ... } // Init: the first flags are fetched
//	defer of.Shutdown()                                          // Shutdown: the client is closed
//	client := of.NewDefaultClient()
//	on, err := client.BooleanValue(ctx, "new-editor", false, of.NewEvaluationContext("user-1",
//		map[string]any{"country": "NZ", "plan": "pro"}))
//
// (of is github.com/open-feature/go-sdk/openfeature.)
//
// # Lifecycle
//
// The provider owns an experiment.LocalClient, made by New. Init is
// LocalClient.Start, bounded by Options.InitTimeout (10 s) when its
// context has no deadline: it returns once flags are in use, from the
// server or, when the server cannot be reached, from LocalConfig.CacheDir.
// A rejected deployment key fails Init with PROVIDER_FATAL; any other
// failure leaves the provider in ERROR while the client keeps trying, and
// the first flags to arrive make it READY. Shutdown is
// LocalClient.CloseContext: updates stop, queued tracking events are sent
// within the context (Options.ShutdownTimeout, 10 s, without a deadline),
// the provider's goroutine ends and the event channel is closed. A provider
// cannot be initialized again after Shutdown (ErrShutdown).
//
// Evaluations through the provider read the flag set in use and send no
// exposure or assignment events (LocalConfig.ExposureConfig and
// AssignmentConfig apply to the client's own EvaluateV2WithOptions, which
// Client returns).
//
// # Evaluation context to user
//
// Each evaluation maps the OpenFeature evaluation context to an
// experiment.User. Attribute names are those of Amplitude's user object.
//
//	context attribute             User field
//	---------------------------   ------------------------------------------
//	targetingKey                  UserID (wins over a user_id attribute;
//	                              an empty targetingKey leaves user_id)
//	user_id, device_id, country,  the field of that JSON name: UserID,
//	region, dma, city, language,  DeviceID, Country, Region, DMA, City,
//	platform, version, os,        Language, Platform, Version, OS,
//	device_manufacturer,          DeviceManufacturer, DeviceBrand,
//	device_brand, device_model,   DeviceModel, Carrier, Library, IPAddress.
//	carrier, library, ip_address  Strings as given; numbers and booleans as
//	                              text (3 -> "3", true -> "true")
//	user_properties               UserProperties (an object)
//	groups                        Groups: group type -> a group name or a
//	                              list of names (targeting reads the first)
//	group_properties              GroupProperties: group type -> group name
//	                              -> properties
//	cohort_ids, group_cohort_ids  CohortIDs, GroupCohortIDs
//	anything else                 UserProperties[name], the value as given
//
// A value of nil is the same as no attribute. A top-level attribute and an
// entry of user_properties with the same name: the user_properties entry
// wins. A reserved attribute whose value has the wrong shape (a list for
// country, a string for groups) fails the evaluation with INVALID_CONTEXT
// and the caller's default: it is not silently dropped, which would give
// the user another variant without a word. Other attributes may hold any
// Go value; the engine reads them as Amplitude's Go SDK does (numbers,
// booleans, lists, and %v for anything else).
//
// # Values
//
// The variant decides the value; a variant without a value stands for its
// key (Amplitude shows the key where the value is empty).
//
//	type     value                                          otherwise
//	------   --------------------------------------------   -------------
//	boolean  "true" or "on" -> true; "false" or "off" ->    TYPE_MISMATCH
//	         false (any case)
//	string   the value
//	int      the value parsed as a base-10 integer, or an   TYPE_MISMATCH
//	         integral number (1e+06)
//	float    the value parsed as a finite number            TYPE_MISMATCH
//	object   the payload when the variant has one; else     TYPE_MISMATCH,
//	         the value when it is a JSON object or array    PARSE_ERROR for
//	         (a copy: callers may modify it)                malformed JSON
//
// With an error the caller's default is returned, with reason ERROR.
//
// # Reasons
//
// The reason is worked out from the flag's config and the segment that
// decided the variant (eval.Result.Segment and Outcome), in this order:
//
//	reason           when                                          value
//	---------------  --------------------------------------------  -------------
//	ERROR            PROVIDER_NOT_READY: no flags yet;             the default
//	                 FLAG_NOT_FOUND: no flag of that key;
//	                 INVALID_CONTEXT: see above; GENERAL: the
//	                 flag depends on a dependency cycle;
//	                 TYPE_MISMATCH, PARSE_ERROR: see Values
//	DEFAULT          no segment gave a variant (Variant is "")     the default
//	DISABLED         the flag's metadata says deployed: false      the default
//	DEFAULT          Amplitude's default variant (metadata         the default
//	                 default: true): the user is not in the
//	                 flag or experiment
//	SPLIT            the deciding segment's bucket sends users     the variant's
//	                 to more than one variant (an experiment, a
//	                 rollout below 100%) and this variant is one
//	                 the hash can pick
//	TARGETING_MATCH  the deciding segment has conditions          the variant's
//	STATIC           the first segment, without conditions,       the variant's
//	                 decided: nothing about the user was read
//	DEFAULT          a later segment without conditions (the      the variant's
//	                 "all other users" fallthrough) decided
//
// A bucket that gives every hash the same variant (100% to "on", over any
// number of allocations) is not a split. The default variant and a
// disabled flag give the caller's default, as Amplitude's SDKs leave such
// flags out of Evaluate, and as the project's OFREP service answers
// DEFAULT without a value. Variant is the variant key whenever a variant
// was assigned, DEFAULT and DISABLED included, and is empty with an error.
// FlagMetadata is the variant's merged metadata (flagType, flagVersion,
// experimentKey, segmentName, deployed, default, evaluationMode, ...);
// integral numbers are int64 (FlagMetadata.GetInt reads flagVersion), and
// structured values are given as JSON text.
//
// # Events
//
// The SDK reports the outcome of Init (READY or ERROR) itself; the
// provider's EventChannel reports what happens afterwards, transitions
// only:
//
//	event                   when
//	----------------------  ------------------------------------------------
//	READY                   updates succeed again after STALE or ERROR, or
//	                        the first flags arrive after Init failed
//	STALE                   an update failed while flags are in use (they
//	                        are the last good ones), or Init used the cache
//	ERROR                   an update failed and no flags are in use, or
//	                        the server rejected the key (updates stopped;
//	                        the flags in use are still served)
//	CONFIGURATION_CHANGED   the flags in use changed; FlagChanges lists
//	                        ChangedFlags: flags added, removed or changed,
//	                        flags whose targeted cohorts changed, and the
//	                        flags that depend on any of them
//
// State events come from LocalConfig.OnStatusChange, changes from
// LocalConfig.OnUpdate (which has both flag sets); both callbacks of the
// given config are still called. Events wait in a bounded queue for the
// reader: neither the client's updater nor an evaluation ever blocks on it.
package openfeature
