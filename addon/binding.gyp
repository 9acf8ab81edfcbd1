{
  "targets": [
    {
      "target_name": "weightcache",
      "sources": [
        "src/addon.cc", "src/crc32c.cc", "src/buffer_pool.cc", "src/transport/frame.cc", "src/transport/io_loop.cc", "src/transport/admission.cc", "src/transport/send.cc", "src/transport/file_payload.cc", "src/transport/transport_js.cc", "src/transport/chunk_serve.cc", "src/transport/native_reads.cc",
        "src/store/arena.cc", "src/store/store.cc", "src/store/store_js.cc", "src/store/bindings.cc", "src/store/range.cc", "src/store/nvme_index.cc", "src/store/disk_reads.cc",
        "src/auth/sha256.cc", "src/auth/token_table.cc",
        "src/io/uring.cc", "src/io/loop.cc",
        "src/nvme/chunk_format.cc", "src/nvme/chunk_reader.cc", "src/nvme/dir_lock.cc", "src/nvme/nvme_js.cc",
        "src/fill/file_jobs.cc", "src/fill/fill_js.cc",
        "src/http/errors.cc", "src/http/parser.cc", "src/http/body.cc", "src/http/replay.cc", "src/http/parser_js.cc",
        "src/http/response.cc", "src/http/worker.cc", "src/http/worker_fast.cc", "src/http/worker_fill.cc", "src/http/worker_send.cc", "src/http/door.cc", "src/http/door_js.cc", "src/http/fastpath.cc", "src/http/fast_fields.cc", "src/http/rfc9110.cc", "src/http/fastpath_js.cc",
        "src/http/doors/read_plan.cc", "src/http/doors/hub.cc", "src/http/doors/s3.cc", "src/http/doors/azure.cc", "src/http/doors/azure_auth.cc", "src/http/doors/sigv4.cc", "src/http/doors/routes.cc", "src/http/doors/routes_js.cc",
        "src/net/event_loop.cc", "src/net/door_js.cc", "src/http/governor.cc",
        "src/resp/inline.cc", "src/resp/parser.cc", "src/resp/replay.cc", "src/resp/parser_js.cc",
        "src/resp/worker.cc", "src/resp/worker_fast.cc", "src/resp/door.cc", "src/resp/door_js.cc", "src/resp/fastpath.cc",
        "src/fuse_js.cc", "src/fuse/request.cc", "src/fuse/reply.cc", "src/fuse/session.cc"
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
