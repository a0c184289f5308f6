// Types of json-pieces.mjs (plain JavaScript so that the parse workers load it without a TypeScript loader).

export type PiecePath = (string | number)[];

export type Piece =
  | { kind: 'root'; value: unknown }
  /** Items appended, in order, to the array at `path`. */
  | { kind: 'items'; path: PiecePath; items: unknown[] }
  /** Entries set, in order, on the object at `path`: key, value, key, value… */
  | { kind: 'entries'; path: PiecePath; entries: unknown[] };

/** `holdsLongString`: the piece carries a single string heavier than the budget. */
export type EmitPiece = (piece: Piece, holdsLongString: boolean) => void;

export declare const DEFAULT_PIECE_WEIGHT: number;
export declare function weightUpTo(value: unknown, cap: number): number;
export declare function splitIntoPieces(root: object, budget: number, emit: EmitPiece): void;
export declare function encodePiece(piece: Piece, holdsLongString: boolean): Piece | string;
export declare function decodePiece(message: Piece | string): Piece;

export declare class PieceAssembler {
  root: unknown;
  apply(piece: Piece): void;
}
