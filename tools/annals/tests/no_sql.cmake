# The annals tool works through the library's API only: its sources hold no
# SQL (issue 13). Fails naming each file and line that does.
# Invoked by ctest with -DSOURCE_DIR=<tools/annals/src>.
file(GLOB_RECURSE sources ${SOURCE_DIR}/*.cpp ${SOURCE_DIR}/*.hpp)
set(found)
foreach(source IN LISTS sources)
  file(STRINGS ${source} lines REGEX "(SELECT|INSERT INTO|DELETE FROM|UPDATE [a-z_]+ SET|CREATE (TABLE|INDEX|TRIGGER)|PRAGMA [a-z_]+|sqlite3_[a-z_]+\\()")
  foreach(line IN LISTS lines)
    list(APPEND found "${source}: ${line}")
  endforeach()
endforeach()
if(found)
  string(REPLACE ";" "\n" found "${found}")
  message(FATAL_ERROR "SQL in the annals tool's sources:\n${found}")
endif()
message("no sql: ok")
