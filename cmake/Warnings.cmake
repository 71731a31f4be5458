# Project warnings as an INTERFACE target: link it to each first-party target; never global.
add_library(poolwatch_warnings INTERFACE)
target_compile_options(poolwatch_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast -Wnon-virtual-dtor
  -Woverloaded-virtual -Wpedantic -Wformat=2 -Wimplicit-fallthrough -Wcast-align
  -Wdouble-promotion $<$<CXX_COMPILER_ID:GNU>:-Wuseless-cast>)
# Off by default: a packager's plain build, with a newer or older compiler, must not fail on a
# warning. The presets (developers, CI) switch it on.
option(POOLWATCH_WARNINGS_AS_ERRORS "Treat warnings as errors" OFF)
if(POOLWATCH_WARNINGS_AS_ERRORS)
  target_compile_options(poolwatch_warnings INTERFACE -Werror)
endif()
