{
  "targets": [
    {
      "target_name": "strata",
      "sources": ["native/strata.c"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "defines": ["_GNU_SOURCE"],
      "libraries": ["-lpthread"]
    }
  ]
}
