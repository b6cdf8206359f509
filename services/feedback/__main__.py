from shared.runtime.service import run

from .app import create_service

run(create_service)
