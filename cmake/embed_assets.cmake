# Static files embedded in a program as C data: the staff page (web/) and the
# OpenAPI document, served by maillage-gateway (contract:
# services/gateway/assets.h).
#
# This file has two roles:
#
# - included from CMakeLists.txt, it defines maillage_embed_assets(), which
#   globs the files (CONFIGURE_DEPENDS, so adding or removing a file is seen
#   at the next build) and adds the custom command that generates the C file,
#   with every file as a dependency (so editing one rebuilds);
#
# - run as a script (cmake -P, by that command), it writes the C file:
#   one byte array per file, its URL path, Content-Type and strong ETag (a
#   SHA-256 prefix of the content), and gw_asset_find().
#
# Generated at build time, never at configure time, like the protobuf code.

if(NOT CMAKE_SCRIPT_MODE_FILE)
  set(MAILLAGE_EMBED_ASSETS_SCRIPT ${CMAKE_CURRENT_LIST_FILE})

  # maillage_embed_assets(OUTPUT <file.c> WEB_DIR <dir> [EXTRA <file>...])
  # Every file under WEB_DIR is served at "/<its path below WEB_DIR>"; each
  # EXTRA file at "/<its name>" (docs/openapi.json -> "/openapi.json"); an
  # EXTRA file that does not exist is left out (and picked up once it does).
  # Hidden files and editor leftovers (*~, *.swp, *.bak, *.orig) are skipped.
  function(maillage_embed_assets)
    cmake_parse_arguments(EA "" "OUTPUT;WEB_DIR" "EXTRA" ${ARGN})
    file(GLOB_RECURSE web_files CONFIGURE_DEPENDS ${EA_WEB_DIR}/*)
    list(FILTER web_files EXCLUDE REGEX "/\\.|~$|\\.(swp|swo|bak|orig|tmp)$")
    list(SORT web_files)
    set(extra_files)
    foreach(extra ${EA_EXTRA})
      # A glob of one name: tolerates the file's absence, re-checked at each build.
      file(GLOB found CONFIGURE_DEPENDS ${extra})
      list(APPEND extra_files ${found})
    endforeach()
    # Semicolons do not survive a custom command's argument list: "|" instead.
    string(REPLACE ";" "|" web_arg "${web_files}")
    string(REPLACE ";" "|" extra_arg "${extra_files}")
    get_filename_component(out_dir ${EA_OUTPUT} DIRECTORY)
    add_custom_command(
      OUTPUT ${EA_OUTPUT}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
      COMMAND ${CMAKE_COMMAND} -DOUTPUT=${EA_OUTPUT} -DWEB_DIR=${EA_WEB_DIR}
              "-DWEB_FILES=${web_arg}" "-DEXTRA_FILES=${extra_arg}"
              -P ${MAILLAGE_EMBED_ASSETS_SCRIPT}
      DEPENDS ${web_files} ${extra_files} ${MAILLAGE_EMBED_ASSETS_SCRIPT}
      COMMENT "Embedding the staff page and the OpenAPI document"
      VERBATIM)
  endfunction()
  return()
endif()

# ---- script mode: generate OUTPUT ---------------------------------------------

cmake_policy(VERSION 3.25)

function(s_content_type path out)
  string(TOLOWER "${path}" p)
  set(type "application/octet-stream")
  if(p MATCHES "\\.html?$")
    set(type "text/html; charset=utf-8")
  elseif(p MATCHES "\\.m?js$")
    set(type "text/javascript; charset=utf-8")
  elseif(p MATCHES "\\.css$")
    set(type "text/css; charset=utf-8")
  elseif(p MATCHES "\\.(json|map)$")
    set(type "application/json")
  elseif(p MATCHES "\\.webmanifest$")
    set(type "application/manifest+json")
  elseif(p MATCHES "\\.svg$")
    set(type "image/svg+xml")
  elseif(p MATCHES "\\.png$")
    set(type "image/png")
  elseif(p MATCHES "\\.jpe?g$")
    set(type "image/jpeg")
  elseif(p MATCHES "\\.gif$")
    set(type "image/gif")
  elseif(p MATCHES "\\.webp$")
    set(type "image/webp")
  elseif(p MATCHES "\\.ico$")
    set(type "image/x-icon")
  elseif(p MATCHES "\\.woff2$")
    set(type "font/woff2")
  elseif(p MATCHES "\\.woff$")
    set(type "font/woff")
  elseif(p MATCHES "\\.txt$")
    set(type "text/plain; charset=utf-8")
  elseif(p MATCHES "\\.xml$")
    set(type "application/xml")
  endif()
  set(${out} "${type}" PARENT_SCOPE)
endfunction()

# CMake regexes have no {n}: sixteen bytes spelt out.
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 s_sixteen)

string(REPLACE "|" ";" web_files "${WEB_FILES}")
string(REPLACE "|" ";" extra_files "${EXTRA_FILES}")

set(entries)   # "url|file" pairs
foreach(f ${web_files})
  file(RELATIVE_PATH rel ${WEB_DIR} ${f})
  list(APPEND entries "/${rel}|${f}")
endforeach()
foreach(f ${extra_files})
  get_filename_component(name ${f} NAME)
  list(APPEND entries "/${name}|${f}")
endforeach()

set(arrays "")
set(table "")
set(seen_urls)
set(index 0)
foreach(entry ${entries})
  string(FIND "${entry}" "|" bar)
  string(SUBSTRING "${entry}" 0 ${bar} url)
  math(EXPR from "${bar} + 1")
  string(SUBSTRING "${entry}" ${from} -1 file)
  # The URL goes into a C string literal and an HTTP path: keep it plain.
  if(NOT url MATCHES "^/[A-Za-z0-9._/-]+$" OR url MATCHES "/\\.")
    message(FATAL_ERROR "embed_assets: ${file}: its name must use only [A-Za-z0-9._-] (URL ${url})")
  endif()
  if(url IN_LIST seen_urls)
    message(FATAL_ERROR "embed_assets: two files would be served at ${url}")
  endif()
  list(APPEND seen_urls "${url}")
  file(SIZE ${file} size)
  file(READ ${file} hex HEX)
  file(SHA256 ${file} sha)
  string(SUBSTRING "${sha}" 0 32 etag)
  # Bytes as "0x..," with 16 per line; a NUL after the content (not counted)
  # so that an empty file still makes a valid array and text can be printed.
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(${s_sixteen})" "\\1\n    " bytes "${bytes}")
  s_content_type("${url}" type)
  string(APPEND arrays "/* ${url} */\nstatic const unsigned char s_asset_${index}[] = {\n    ${bytes}0x00};\n\n")
  string(APPEND table "    {\"${url}\", s_asset_${index}, ${size}u, \"${type}\", \"\\\"${etag}\\\"\"},\n")
  math(EXPR index "${index} + 1")
endforeach()

set(content "/* Generated by cmake/embed_assets.cmake from web/ and docs/openapi.json:
 * do not edit (edit those files; the build regenerates this one). */
#include <string.h>

#include \"assets.h\"

${arrays}/* A dozen entries: a linear search. The NULL sentinel ends the table (and
 * keeps it a valid array when there is nothing to embed). */
static const gw_asset_t s_assets[] = {
${table}    {NULL, NULL, 0, NULL, NULL},
};

const gw_asset_t *gw_asset_find(const char *path) {
    if (!path) return NULL;
    if (strcmp(path, \"/\") == 0) path = \"/index.html\";
    for (const gw_asset_t *a = s_assets; a->path; a++)
        if (strcmp(a->path, path) == 0) return a;
    return NULL;
}

const gw_asset_t *gw_asset_all(size_t *count) {
    *count = ${index};
    return s_assets;
}
")

file(WRITE "${OUTPUT}" "${content}")
