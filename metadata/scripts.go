package metadata

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts live in scripts/, one file per script, each opening with
// a comment that states its KEYS, ARGV, reply and invariants. They are
// compiled into the binary; redis.Script computes each one's SHA once, at
// start-up, and calls it with EVALSHA, falling back to EVAL (which loads
// it) when Redis does not know it.
//
//go:embed scripts/*.lua
var scriptFS embed.FS

var (
	commitScript        = mustScript("commit.lua")
	createTopicScript   = mustScript("create_topic.lua")
	deleteTopicScript   = mustScript("delete_topic.lua")
	groupSyncScript     = mustScript("group_sync.lua")
	commitOffsetsScript = mustScript("commit_offsets.lua")
	acquireScript       = mustScript("job_acquire.lua")
	releaseScript       = mustScript("job_release.lua")
	setMaxScript        = mustScript("set_max.lua")
	trimScript          = mustScript("trim.lua")
	updateTopicScript   = mustScript("update_topic.lua")
	deleteGroupScript   = mustScript("delete_group.lua")
	forgetOffsetsScript = mustScript("forget_offsets.lua")
	resetOffsetsScript  = mustScript("reset_offsets.lua")
	ensureTokenScript   = mustScript("ensure_token.lua")
)

// scripts lists every script, for Load.
var scripts = []*redis.Script{
	commitScript, createTopicScript, deleteTopicScript, groupSyncScript, commitOffsetsScript,
	acquireScript, releaseScript, setMaxScript, trimScript, updateTopicScript,
	deleteGroupScript, forgetOffsetsScript, resetOffsetsScript, ensureTokenScript,
}

// mustScript reads an embedded script. A missing file is a build mistake,
// caught by every test of the package.
func mustScript(name string) *redis.Script {
	src, err := scriptFS.ReadFile("scripts/" + name)
	if err != nil {
		panic("metadata: " + err.Error())
	}
	return redis.NewScript(string(src))
}
