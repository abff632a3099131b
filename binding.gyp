{
  "targets": [
    {
      "target_name": "pagewalk",
      "sources": [
        "native/binding.cc",
        "native/binding/entries.cc",
        "native/binding/kpage.cc",
        "native/binding/maps.cc",
        "native/binding/pagemap.cc",
        "native/binding/proc_facts.cc",
        "native/binding/ram_census.cc",
        "native/binding/thread_cpu.cc",
        "native/binding/shmem_swap.cc",
        "native/binding/tally.cc",
        "native/binding/walk.cc",
        "native/file_cache.cc",
        "native/kpage_table.cc",
        "native/lock_pacing.cc",
        "native/mapping_kinds.cc",
        "native/maps_parser.cc",
        "native/pagemap_entry.cc",
        "native/pagemap_file.cc",
        "native/pending_runs.cc",
        "native/proc_facts.cc",
        "native/process_walk.cc",
        "native/ram_census.cc",
        "native/shared_frames.cc",
        "native/shared_reads.cc",
        "native/shmem_swap.cc",
        "native/tally.cc",
        "native/walk_buffer.cc",
        "native/walk_classify.cc",
        "native/walk_mappings.cc",
        "native/walk_settle.cc",
        "native/walk_space.cc",
        "native/walk_thp.cc"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "conditions": [
        ["OS=='linux'", {
          "cflags_cc": ["<!@(node -p \"process.env.PAGEWALK_SANITIZE ? '-fsanitize=address,undefined -fno-omit-frame-pointer -g' : ''\")"],
          "ldflags": ["<!@(node -p \"process.env.PAGEWALK_SANITIZE ? '-fsanitize=address,undefined' : ''\")"]
        }]
      ]
    }
  ]
}
