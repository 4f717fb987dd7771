"""A synthetic image tree of installed application packages, written as the tools write them.

The texts follow the formats' own conventions (Core Metadata for Python, npm's package.json,
the .NET SDK's deps.json, Composer's installed.json in both versions, RubyGems' generated
gemspecs). One ``syft dir:`` scan of this tree is the oracle for the application catalogers.
"""

from __future__ import annotations

import json

PY = "/usr/local/lib/python3.11/site-packages"
REQUESTS = f"{PY}/requests-2.31.0.dist-info/METADATA"
JINJA = f"{PY}/Jinja2-3.1.2.dist-info/METADATA"
SIX = "/usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO"
OLD_EGG = "/usr/lib/python2.7/dist-packages/old_pkg-0.1.egg-info"
CLASSIFIED = f"{PY}/classified-1.0.dist-info/METADATA"

NODE = "/srv/app/node_modules"
EXPRESS = f"{NODE}/express/package.json"
BABEL = f"{NODE}/@babel/core/package.json"
NESTED_DEBUG = f"{NODE}/express/node_modules/debug/package.json"
RXJS = f"{NODE}/rxjs/package.json"
RXJS_AJAX = f"{NODE}/rxjs/ajax/package.json"
APP_MANIFEST = "/srv/app/package.json"

DEPS_JSON = "/app/webapi.deps.json"
COMPOSER2 = "/var/www/vendor/composer/installed.json"
COMPOSER1 = "/srv/legacy/vendor/composer/installed.json"
RAKE = "/usr/local/bundle/specifications/rake-13.0.6.gemspec"
I18N = "/usr/local/bundle/specifications/i18n-1.14.1.gemspec"


def _json(value: object) -> bytes:
    return json.dumps(value, indent=2).encode()


APP_FILES: dict[str, bytes] = {
    REQUESTS: b"""Metadata-Version: 2.1
Name: requests
Version: 2.31.0
Summary: Python HTTP for Humans.
License: Apache 2.0
Classifier: License :: OSI Approved :: Apache Software License
Requires-Python: >=3.7
Requires-Dist: charset-normalizer (<4,>=2)
Requires-Dist: idna (<4,>=2.5)
Requires-Dist: urllib3 (<3,>=1.21.1)
Requires-Dist: certifi (>=2017.4.17)
Provides-Extra: socks
Requires-Dist: PySocks (!=1.5.7,>=1.5.6) ; extra == 'socks'

Requests
========
Name: not-a-header
""",
    JINJA: b"""Metadata-Version: 2.4
Name: Jinja2
Version: 3.1.2
License-Expression: BSD-3-Clause
Requires-Dist: MarkupSafe>=2.0
""",
    SIX: b"""Metadata-Version: 1.2
Name: six
Version: 1.16.0
License: MIT
""",
    OLD_EGG: b"""Metadata-Version: 1.0
Name: old-pkg
Version: 0.1
License: UNKNOWN
""",
    CLASSIFIED: b"""Metadata-Version: 2.1
Name: classified
Version: 1.0
License: Permission is hereby granted, free of charge, to any person obtaining a copy
        of this software and associated documentation files...
Classifier: License :: OSI Approved :: MIT License
""",
    EXPRESS: _json(
        {
            "name": "express",
            "version": "4.18.2",
            "license": "MIT",
            "dependencies": {"accepts": "~1.3.8", "debug": "2.6.9"},
            "devDependencies": {"mocha": "10.2.0"},
        }
    ),
    BABEL: _json({"name": "@babel/core", "version": "7.23.0", "license": {"type": "MIT"}}),
    NESTED_DEBUG: _json({"name": "debug", "version": "2.6.9", "licenses": [{"type": "MIT"}]}),
    RXJS: _json({"name": "rxjs", "version": "7.8.1", "license": "Apache-2.0"}),
    RXJS_AJAX: _json({"name": "rxjs/ajax", "version": "7.8.1", "main": "../dist/cjs/ajax/index.js"}),
    APP_MANIFEST: _json({"name": "my-service", "version": "1.0.0", "private": True}),
    DEPS_JSON: _json(
        {
            "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0", "signature": ""},
            "targets": {
                ".NETCoreApp,Version=v8.0": {
                    "webapi/1.0.0": {
                        "dependencies": {"Newtonsoft.Json": "13.0.3", "Serilog": "3.1.1"},
                        "runtime": {"webapi.dll": {}},
                    },
                    "Newtonsoft.Json/13.0.3": {"runtime": {"lib/net6.0/Newtonsoft.Json.dll": {}}},
                    "Serilog/3.1.1": {
                        "dependencies": {"System.Diagnostics.DiagnosticSource": "7.0.2"},
                        "runtime": {"lib/net7.0/Serilog.dll": {}},
                    },
                    "System.Diagnostics.DiagnosticSource/7.0.2": {},
                }
            },
            "libraries": {
                "webapi/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
                "Newtonsoft.Json/13.0.3": {
                    "type": "package",
                    "serviceable": True,
                    "sha512": "sha512-HrC5BXdl00IP9zeV+0Z848QWPAoCr9P3bDEZguI+gkLcBKAOx",
                    "path": "newtonsoft.json/13.0.3",
                },
                "Serilog/3.1.1": {"type": "package", "serviceable": True, "sha512": "sha512-AAAA"},
                "System.Diagnostics.DiagnosticSource/7.0.2": {
                    "type": "package",
                    "serviceable": True,
                    "sha512": "sha512-BBBB",
                },
            },
        }
    ),
    COMPOSER2: _json(
        {
            "packages": [
                {
                    "name": "monolog/monolog",
                    "version": "3.5.0",
                    "version_normalized": "3.5.0.0",
                    "require": {"php": ">=8.1", "psr/log": "^2.0 || ^3.0", "ext-json": "*"},
                    "license": ["MIT"],
                    "type": "library",
                },
                {"name": "psr/log", "version": "3.0.0", "license": ["MIT"], "type": "library"},
                {"name": "phpunit/phpunit", "version": "10.5.3", "license": ["BSD-3-Clause"]},
            ],
            "dev": True,
            "dev-package-names": ["phpunit/phpunit"],
        }
    ),
    COMPOSER1: _json([{"name": "symfony/polyfill-mbstring", "version": "v1.28.0", "license": ["MIT"]}]),
    RAKE: b"""# -*- encoding: utf-8 -*-
# stub: rake 13.0.6 ruby lib

Gem::Specification.new do |s|
  s.name = "rake".freeze
  s.version = "13.0.6"

  s.required_rubygems_version = Gem::Requirement.new(">= 1.3.2".freeze)
  s.metadata = { "bug_tracker_uri" => "https://github.com/ruby/rake/issues" } if s.respond_to? :metadata=
  s.authors = ["Hiroshi SHIBATA".freeze, "Eric Hodel".freeze]
  s.licenses = ["MIT".freeze]
  s.rubygems_version = "3.4.10".freeze
  s.summary = "Rake is a Make-like program implemented in Ruby".freeze
end
""",
    I18N: b"""# -*- encoding: utf-8 -*-
# stub: i18n 1.14.1 ruby lib

Gem::Specification.new do |s|
  s.name = "i18n".freeze
  s.version = "1.14.1"
  s.licenses = ["MIT".freeze]

  s.specification_version = 4

  s.add_runtime_dependency(%q<concurrent-ruby>.freeze, ["~> 1.0"])
  s.add_development_dependency(%q<minitest>.freeze, [">= 0"])
end
""",
}
