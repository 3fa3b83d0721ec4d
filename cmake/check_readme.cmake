# ctest helper: the quick start in README.md is examples/quickstart.c, word
# for word (the example is what gets compiled and run).
#   cmake -DREADME=<README.md> -DEXAMPLE=<quickstart.c> -P check_readme.cmake
cmake_minimum_required(VERSION 3.16)

file(READ "${README}" _readme)
file(READ "${EXAMPLE}" _example)
string(FIND "${_readme}" "## Quick start" _at)
if(_at LESS 0)
    message(FATAL_ERROR "check_readme: no '## Quick start' section in ${README}")
endif()
string(SUBSTRING "${_readme}" ${_at} -1 _readme)
string(FIND "${_readme}" "```c\n" _open)
if(_open LESS 0)
    message(FATAL_ERROR "check_readme: no ```c block after '## Quick start'")
endif()
math(EXPR _open "${_open} + 5")
string(SUBSTRING "${_readme}" ${_open} -1 _readme)
string(FIND "${_readme}" "```" _close)
string(SUBSTRING "${_readme}" 0 ${_close} _block)
if(NOT _block STREQUAL _example)
    message(FATAL_ERROR "check_readme: the quick start in README.md differs from ${EXAMPLE}; "
                        "copy the example into the README")
endif()
string(REGEX MATCHALL "\n" _nl "${_example}")
list(LENGTH _nl _lines)
message(STATUS "check_readme: README quick start matches the example (${_lines} lines)")
