{
  "targets": [
    {
      "target_name": "weightcache",
      "sources": [
        "src/addon.cc", "src/crc32c.cc", "src/frame.cc", "src/buffer_pool.cc", "src/io_loop.cc", "src/file_payload.cc", "src/transport_js.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "src"],
      "defines": ["NAPI_VERSION=9", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++20", "-O2", "-Wall", "-Wextra", "-fexceptions", "-pthread"],
      "libraries": ["-pthread"],
      "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES" }
    }
  ]
}
