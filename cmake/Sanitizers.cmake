# POOLWATCH_SANITIZE=address,undefined | thread — applied to every target of this build tree,
# since a sanitizer runtime must see the whole program.
set(POOLWATCH_SANITIZE "" CACHE STRING "Sanitizers: address,undefined or thread (empty: none)")
# POOLWATCH_FUZZ (clang): every target instrumented for libFuzzer with ASan and UBSan; the
# fuzz targets in tests/fuzz link the fuzzer's main.
option(POOLWATCH_FUZZ "Build the libFuzzer targets (clang)" OFF)
if(POOLWATCH_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "POOLWATCH_FUZZ needs clang (the fuzz preset uses clang++-14)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(POOLWATCH_SANITIZE)
  if(POOLWATCH_SANITIZE MATCHES "thread" AND POOLWATCH_SANITIZE MATCHES "address")
    message(FATAL_ERROR "POOLWATCH_SANITIZE: thread cannot be combined with address")
  endif()
  set(_pw_san_flags -fsanitize=${POOLWATCH_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_compile_options(${_pw_san_flags})
  add_link_options(${_pw_san_flags})
  if(POOLWATCH_SANITIZE MATCHES "thread")
    # GCC warns that TSan does not model the atomic_thread_fence calls inside Boost.Asio; the
    # warning is about Asio's internals, not ours, and -Werror would stop the build on it.
    add_compile_options(-Wno-tsan)
  endif()
endif()
