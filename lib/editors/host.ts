// The editor API every editable model class exposes (loadEditors / attachEditors / detachEditors /
// editorSets), over its EditorRegistry: one implementation (EditableModel), which the model classes extend.
import type { Device } from '../tensor';
import { EditorSet, ReadEditorsOptions, readEditors } from './format';
import { EditSites, EditorRegistry } from './registry';

export class EditorHost {
  #registry: EditorRegistry | null = null;

  constructor(private readonly sites: () => EditSites, private readonly device: Device) {}

  /** Created on first use (a model that never sees an editor allocates nothing). */
  get registry(): EditorRegistry {
    return (this.#registry ??= new EditorRegistry(this.sites(), this.device));
  }

  async load(dir: string, name: string, opts: ReadEditorsOptions = {}): Promise<void> {
    this.registry.attach(name, await readEditors(dir, opts));
  }

  get names(): string[] {
    return this.#registry?.names ?? [];
  }

  dispose(): void {
    this.#registry?.dispose();
  }
}

/** What a model with editors offers (RecurrentLMBase, LladaLM, MambaOutClassifier, MambaVLM). */
export interface Editable {
  /**
   * Reads an editors directory (editors.json + editors.safetensors: docs/editors-format.md) and makes it
   * resident under `name`, next to any others: calls and requests choose it with `{ editors: name }`.
   */
  loadEditors(dir: string, name: string, opts?: ReadEditorsOptions): Promise<void>;
  /** Makes an editor set (read with readEditors, or built in code) resident under `name`. */
  attachEditors(name: string, set: EditorSet): void;
  /** Removes a set without touching the base model; requests running with it keep it until they end. */
  detachEditors(name: string): void;
  /** Names of the attached editor sets. */
  readonly editorSets: string[];
}

/** The Editable methods over a model's EditorHost, written once: model classes extend this. */
export abstract class EditableModel implements Editable {
  /** The model's editor host (its sites and device). */
  protected abstract get editorHost(): EditorHost;

  loadEditors(dir: string, name: string, opts: ReadEditorsOptions = {}): Promise<void> {
    return this.editorHost.load(dir, name, opts);
  }

  attachEditors(name: string, set: EditorSet): void {
    this.editorHost.registry.attach(name, set);
  }

  detachEditors(name: string): void {
    this.editorHost.registry.detach(name);
  }

  get editorSets(): string[] {
    return this.editorHost.names;
  }
}
